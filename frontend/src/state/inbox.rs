//! The inbox as a reducer: the message list (newest first, one account or all), search as you
//! type, the selection and the keyboard (j/k, Enter, Delete). Actions go in; effects for the
//! store and the reader come out.

// `Row` lives in `crate::model`; it is named here too because the store reaches it by this
// path.
pub use crate::model::Row;

/// Rows read from the store with their search text lower-cased, built a page at a time (so
/// reading 50,000 rows never takes one long task) and then handed over whole with
/// [`Action::LoadIndexed`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indexed {
    rows: Vec<Row>,
    haystacks: Vec<String>,
}

impl Indexed {
    /// Adds a page of rows, lower-casing their search text.
    pub fn extend(&mut self, rows: Vec<Row>) {
        self.rows.reserve(rows.len());
        self.haystacks.reserve(rows.len());
        for mut row in rows {
            self.haystacks.push(haystack(&mut row));
            self.rows.push(row);
        }
    }

    /// Rows added so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl From<Vec<Row>> for Indexed {
    fn from(rows: Vec<Row>) -> Self {
        let mut indexed = Self::default();
        indexed.extend(rows);
        indexed
    }
}

/// What the person did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The list was (re)loaded from the store.
    Load(Vec<Row>),
    /// The list was (re)loaded from the store, already indexed page by page.
    LoadIndexed(Indexed),
    /// The sync stored these rows (a committed batch): they join the list, in place of any
    /// with the same account and UIDL, without rereading the store.
    Arrived(Vec<Row>),
    /// The search box changed.
    Search(String),
    /// Show one account, or all (`None`).
    ShowAccount(Option<String>),
    /// Select the next message (j, ↓).
    Next,
    /// Select the previous message (k, ↑).
    Previous,
    /// Select a message by its position in the shown list (a click).
    Select(usize),
    /// Open the selected message (Enter).
    Open,
    /// Delete the selected message (Delete).
    Delete,
    /// Mark the selected message read or unread.
    MarkRead(bool),
}

/// What the app must do after an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing beyond re-rendering.
    None,
    /// Show this message in the reader (and mark it read in the store).
    Open {
        /// Account.
        account: String,
        /// UIDL.
        uid: String,
    },
    /// Delete this message from the store (the account's server policy decides the server).
    Delete {
        /// Account.
        account: String,
        /// UIDL.
        uid: String,
    },
    /// Store the read flag.
    MarkRead {
        /// Account.
        account: String,
        /// UIDL.
        uid: String,
        /// The new flag.
        read: bool,
    },
}

/// The inbox state.
#[derive(Debug, Clone, Default)]
pub struct Inbox {
    rows: Vec<Row>,
    /// Per row: from, subject and text, lower-cased once, so a search over 50,000 rows does
    /// not lower-case them on every key press.
    haystacks: Vec<String>,
    query: String,
    account: Option<String>,
    shown: Vec<usize>,
    selected: Option<usize>,
}

impl Inbox {
    /// An empty inbox showing all accounts.
    pub fn new() -> Self {
        Self::default()
    }

    /// The messages shown, newest first.
    pub fn shown(&self) -> impl Iterator<Item = &Row> {
        self.shown.iter().map(|&i| &self.rows[i])
    }

    /// The account shown, or `None` for all.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// How many messages are loaded, shown or not.
    pub fn total(&self) -> usize {
        self.rows.len()
    }

    /// How many messages are shown.
    pub fn len(&self) -> usize {
        self.shown.len()
    }

    /// Whether no message is shown.
    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    /// The position of the selected message in the shown list.
    pub fn selected(&self) -> Option<usize> {
        self.selected
    }

    /// The selected message.
    pub fn selected_row(&self) -> Option<&Row> {
        self.selected.map(|s| &self.rows[self.shown[s]])
    }

    /// Applies `action`; returns what the app must do.
    pub fn apply(&mut self, action: Action) -> Effect {
        match action {
            Action::Load(rows) => return self.apply(Action::LoadIndexed(rows.into())),
            Action::LoadIndexed(Indexed { rows, haystacks }) => {
                let keep = self
                    .selected_row()
                    .map(|r| (r.account.clone(), r.uid.clone()));
                // Newest first, each row with its haystack.
                let mut pairs: Vec<(Row, String)> = rows.into_iter().zip(haystacks).collect();
                sort_newest_first(&mut pairs);
                (self.rows, self.haystacks) = pairs.into_iter().unzip();
                self.refilter(keep);
            }
            Action::Arrived(rows) => {
                let keep = self
                    .selected_row()
                    .map(|r| (r.account.clone(), r.uid.clone()));
                let new: std::collections::HashSet<(&str, &str)> = rows
                    .iter()
                    .map(|r| (r.account.as_str(), r.uid.as_str()))
                    .collect();
                let mut pairs: Vec<(Row, String)> = std::mem::take(&mut self.rows)
                    .into_iter()
                    .zip(std::mem::take(&mut self.haystacks))
                    .filter(|(r, _)| !new.contains(&(r.account.as_str(), r.uid.as_str())))
                    .collect();
                drop(new);
                pairs.extend(rows.into_iter().map(|mut row| {
                    let haystack = haystack(&mut row);
                    (row, haystack)
                }));
                sort_newest_first(&mut pairs);
                (self.rows, self.haystacks) = pairs.into_iter().unzip();
                self.refilter(keep);
            }
            Action::Search(query) => {
                let keep = self
                    .selected_row()
                    .map(|r| (r.account.clone(), r.uid.clone()));
                let query = query.trim().to_lowercase();
                // Typing on narrows what is shown: only those rows need checking.
                let narrowing = !self.query.is_empty() && query.contains(self.query.as_str());
                self.query = query;
                if narrowing {
                    let shown = std::mem::take(&mut self.shown);
                    self.shown = shown.into_iter().filter(|&i| self.matches(i)).collect();
                    self.reselect(keep);
                } else {
                    self.refilter(keep);
                }
            }
            Action::ShowAccount(account) => {
                self.account = account;
                self.refilter(None);
            }
            Action::Next => {
                self.selected = match self.selected {
                    _ if self.shown.is_empty() => None,
                    None => Some(0),
                    Some(s) => Some((s + 1).min(self.shown.len() - 1)),
                }
            }
            Action::Previous => {
                self.selected = match self.selected {
                    _ if self.shown.is_empty() => None,
                    None => Some(0),
                    Some(s) => Some(s.saturating_sub(1)),
                }
            }
            Action::Select(position) => {
                if position < self.shown.len() {
                    self.selected = Some(position);
                    return self.apply(Action::Open);
                }
            }
            Action::Open => {
                if let Some(s) = self.selected {
                    let row = &mut self.rows[self.shown[s]];
                    row.read = true;
                    return Effect::Open {
                        account: row.account.clone(),
                        uid: row.uid.clone(),
                    };
                }
            }
            Action::MarkRead(read) => {
                if let Some(s) = self.selected {
                    let row = &mut self.rows[self.shown[s]];
                    row.read = read;
                    return Effect::MarkRead {
                        account: row.account.clone(),
                        uid: row.uid.clone(),
                        read,
                    };
                }
            }
            Action::Delete => {
                if let Some(s) = self.selected {
                    let row = self.rows.remove(self.shown[s]);
                    self.haystacks.remove(self.shown[s]);
                    self.refilter(None);
                    self.selected = if self.shown.is_empty() {
                        None
                    } else {
                        Some(s.min(self.shown.len() - 1))
                    };
                    return Effect::Delete {
                        account: row.account,
                        uid: row.uid,
                    };
                }
            }
        }
        Effect::None
    }

    fn matches(&self, i: usize) -> bool {
        if let Some(account) = &self.account {
            if &self.rows[i].account != account {
                return false;
            }
        }
        self.query.is_empty() || self.haystacks[i].contains(self.query.as_str())
    }

    /// Recomputes the shown list, keeping the selection on `keep` if it is still shown.
    fn refilter(&mut self, keep: Option<(String, String)>) {
        self.shown = (0..self.rows.len()).filter(|&i| self.matches(i)).collect();
        self.reselect(keep);
    }

    fn reselect(&mut self, keep: Option<(String, String)>) {
        self.selected = keep.and_then(|(account, uid)| {
            self.shown
                .iter()
                .position(|&i| self.rows[i].account == account && self.rows[i].uid == uid)
        });
    }
}

/// Newest first; rows of the same date by UIDL, so the order never depends on arrival.
fn sort_newest_first(pairs: &mut [(Row, String)]) {
    pairs.sort_by(|(a, _), (b, _)| b.date.cmp(&a.date).then_with(|| a.uid.cmp(&b.uid)));
}

/// What a search looks in, lower-cased: sender, subject and the start of the text (the
/// snippet for rows stored before the longer text was kept).
fn haystack(row: &mut Row) -> String {
    let body = std::mem::take(&mut row.search);
    let body = if body.is_empty() { &row.snippet } else { &body };
    let mut text = String::with_capacity(row.from.len() + row.subject.len() + body.len() + 2);
    for field in [&row.from, &row.subject, body] {
        text.push_str(&field.to_lowercase());
        text.push('\n');
    }
    text
}

/// The action for a key press in the list (`key` as in `KeyboardEvent.key`).
pub fn key_action(key: &str) -> Option<Action> {
    match key {
        "j" | "ArrowDown" => Some(Action::Next),
        "k" | "ArrowUp" => Some(Action::Previous),
        "Enter" => Some(Action::Open),
        "Delete" => Some(Action::Delete),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(account: &str, uid: &str, date: i64, subject: &str) -> Row {
        Row {
            account: account.into(),
            uid: uid.into(),
            from: format!("sender of {uid}"),
            subject: subject.into(),
            date,
            size: 100,
            has_attachments: false,
            read: false,
            snippet: String::new(),
            search: String::new(),
        }
    }

    fn subjects(inbox: &Inbox) -> Vec<&str> {
        inbox.shown().map(|r| r.subject.as_str()).collect()
    }

    fn loaded() -> Inbox {
        let mut inbox = Inbox::new();
        inbox.apply(Action::Load(vec![
            row("a", "1", 100, "Old news"),
            row("b", "2", 300, "Newest invoice"),
            row("a", "3", 200, "Middle report"),
        ]));
        inbox
    }

    #[test]
    fn rows_a_sync_stored_join_the_list_like_a_reload() {
        let mut inbox = loaded();
        inbox.apply(Action::ShowAccount(Some("b".into())));
        inbox.apply(Action::Next);
        assert_eq!(inbox.selected_row().map(|r| r.uid.as_str()), Some("2"));
        // A new message, and message 3 again (stored whole now: its row is replaced).
        let mut whole = row("a", "3", 200, "Middle report, whole");
        whole.search = "Body TEXT".into();
        inbox.apply(Action::Arrived(vec![
            row("b", "4", 250, "Fresh reply"),
            whole,
        ]));
        assert_eq!(inbox.total(), 4);
        assert_eq!(
            subjects(&inbox),
            ["Newest invoice", "Fresh reply"],
            "newest first, still showing account b only"
        );
        assert_eq!(inbox.selected_row().map(|r| r.uid.as_str()), Some("2"));
        inbox.apply(Action::ShowAccount(None));
        assert_eq!(
            subjects(&inbox),
            [
                "Newest invoice",
                "Fresh reply",
                "Middle report, whole",
                "Old news"
            ]
        );
        inbox.apply(Action::Search("body text".into()));
        assert_eq!(subjects(&inbox), ["Middle report, whole"]);

        // The same as reading the whole list again.
        let mut reloaded = Inbox::new();
        reloaded.apply(Action::Load(vec![
            row("a", "1", 100, "Old news"),
            row("b", "2", 300, "Newest invoice"),
            {
                let mut r = row("a", "3", 200, "Middle report, whole");
                r.search = "Body TEXT".into();
                r
            },
            row("b", "4", 250, "Fresh reply"),
        ]));
        assert_eq!(inbox.rows, reloaded.rows);
        assert_eq!(inbox.haystacks, reloaded.haystacks);
    }

    #[test]
    fn rows_indexed_page_by_page_load_like_rows_loaded_at_once() {
        let mut rows: Vec<Row> = (0..250)
            .map(|i| {
                let mut r = row(
                    ["a", "b"][i % 2],
                    &format!("{i:03}"),
                    (i * 7 % 50) as i64,
                    "S",
                );
                r.search = format!("Body Word{i}");
                r
            })
            .collect();
        rows[17].subject = "Quarterly REPORT".into();
        let mut at_once = Inbox::new();
        at_once.apply(Action::Load(rows.clone()));

        let mut indexed = Indexed::default();
        for page in rows.chunks(64) {
            indexed.extend(page.to_vec());
        }
        assert_eq!(indexed.len(), 250);
        let mut paged = Inbox::new();
        paged.apply(Action::LoadIndexed(indexed));
        assert_eq!(paged.rows, at_once.rows);
        assert_eq!(paged.haystacks, at_once.haystacks);

        paged.apply(Action::Search("word17".into()));
        let mut found: Vec<&str> = paged.shown().map(|r| r.uid.as_str()).collect();
        found.sort_unstable();
        let mut expected = vec!["017".to_owned()];
        expected.extend((170..180).map(|i| i.to_string()));
        assert_eq!(found, expected);
        paged.apply(Action::Search("report".into()));
        assert_eq!(
            paged.shown().map(|r| r.uid.as_str()).collect::<Vec<_>>(),
            ["017"]
        );
    }

    #[test]
    fn newest_first_unified_or_per_account() {
        let mut inbox = loaded();
        assert_eq!(
            subjects(&inbox),
            ["Newest invoice", "Middle report", "Old news"]
        );
        inbox.apply(Action::ShowAccount(Some("a".into())));
        assert_eq!(subjects(&inbox), ["Middle report", "Old news"]);
        inbox.apply(Action::ShowAccount(None));
        assert_eq!(inbox.len(), 3);
    }

    #[test]
    fn search_answers_as_you_type_and_keeps_the_selection() {
        let mut inbox = loaded();
        inbox.apply(Action::Next);
        inbox.apply(Action::Next);
        assert_eq!(inbox.selected_row().unwrap().uid, "3");
        inbox.apply(Action::Search("REP".into()));
        assert_eq!(subjects(&inbox), ["Middle report"]);
        assert_eq!(inbox.selected(), Some(0));
        inbox.apply(Action::Search("sender of 1".into()));
        assert_eq!(subjects(&inbox), ["Old news"]);
        assert_eq!(inbox.selected(), None);
        inbox.apply(Action::Search(String::new()));
        assert_eq!(inbox.len(), 3);
    }

    #[test]
    fn search_finds_words_in_the_body_text_beyond_the_snippet() {
        let mut inbox = Inbox::new();
        let mut with_body = row("a", "1", 100, "Quarterly");
        with_body.snippet = "Dear all,".into();
        with_body.search = "Dear all, the Zeppelin arrives on Tuesday.".into();
        let mut old = row("a", "2", 50, "Old row");
        old.snippet = "stored before the longer text: zeppelin too".into();
        inbox.apply(Action::Load(vec![
            with_body,
            old,
            row("a", "3", 10, "Other"),
        ]));
        inbox.apply(Action::Search("zepp".into()));
        assert_eq!(subjects(&inbox), ["Quarterly", "Old row"]);
        // Typing on narrows the same result.
        inbox.apply(Action::Search("zeppelin arrives".into()));
        assert_eq!(subjects(&inbox), ["Quarterly"]);
        // The search text is not kept twice.
        assert!(inbox.shown().all(|r| r.search.is_empty()));
    }

    #[test]
    fn keyboard_moves_opens_and_deletes() {
        let mut inbox = loaded();
        assert_eq!(inbox.apply(key_action("Enter").unwrap()), Effect::None);
        inbox.apply(key_action("j").unwrap());
        inbox.apply(key_action("j").unwrap());
        inbox.apply(key_action("k").unwrap());
        assert_eq!(
            inbox.apply(key_action("Enter").unwrap()),
            Effect::Open {
                account: "b".into(),
                uid: "2".into()
            }
        );
        assert!(inbox.selected_row().unwrap().read);
        assert_eq!(
            inbox.apply(key_action("Delete").unwrap()),
            Effect::Delete {
                account: "b".into(),
                uid: "2".into()
            }
        );
        assert_eq!(subjects(&inbox), ["Middle report", "Old news"]);
        assert_eq!(inbox.selected_row().unwrap().uid, "3");
        // Past the ends, the selection stays put.
        inbox.apply(Action::Next);
        inbox.apply(Action::Next);
        assert_eq!(inbox.selected_row().unwrap().uid, "1");
        inbox.apply(Action::Delete);
        inbox.apply(Action::Delete);
        assert!(inbox.is_empty());
        assert_eq!(inbox.apply(Action::Delete), Effect::None);
        assert_eq!(key_action("x"), None);
    }

    #[test]
    fn clicks_open_and_read_flags_can_be_undone() {
        let mut inbox = loaded();
        assert_eq!(
            inbox.apply(Action::Select(2)),
            Effect::Open {
                account: "a".into(),
                uid: "1".into()
            }
        );
        assert_eq!(
            inbox.apply(Action::MarkRead(false)),
            Effect::MarkRead {
                account: "a".into(),
                uid: "1".into(),
                read: false
            }
        );
        assert_eq!(inbox.apply(Action::Select(9)), Effect::None);
    }

    #[test]
    fn a_reload_keeps_the_selection_on_the_same_message() {
        let mut inbox = loaded();
        inbox.apply(Action::Select(1));
        let mut rows: Vec<Row> = inbox.shown().cloned().collect();
        rows.push(row("a", "4", 400, "Brand new"));
        inbox.apply(Action::Load(rows));
        assert_eq!(inbox.selected_row().unwrap().uid, "3");
        assert_eq!(inbox.selected(), Some(2));
    }
}
