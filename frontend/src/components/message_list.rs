//! The message list: newest first, virtualized (only the rows in view are in the page), unread
//! in bold, an attachment mark; a listbox for assistive technology.

use yew::prelude::*;

use crate::state::inbox::{Inbox, Row};
use crate::state::window::window;

/// Height of one row in pixels (the CSS uses the same value).
pub const ROW_PX: u32 = 56;

/// A date for the list: time today, else day and month, else the year too.
pub fn short_date(date: i64, now: i64) -> String {
    if date <= 0 {
        return String::new();
    }
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(date as f64 * 1000.0));
    let n = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(now as f64 * 1000.0));
    if d.get_full_year() == n.get_full_year()
        && d.get_month() == n.get_month()
        && d.get_date() == n.get_date()
    {
        format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
    } else {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = MONTHS[(d.get_month() as usize).min(11)];
        if d.get_full_year() == n.get_full_year() {
            format!("{} {month}", d.get_date())
        } else {
            format!("{} {month} {}", d.get_date(), d.get_full_year())
        }
    }
}

/// A size for people: "820 B", "14 KB", "2.3 MB".
pub fn human_size(bytes: u64) -> String {
    match bytes {
        0..=999 => format!("{bytes} B"),
        1_000..=999_999 => format!("{} KB", bytes.div_ceil(1_000)),
        _ => format!("{:.1} MB", bytes as f64 / 1e6),
    }
}

fn row_view(
    row: &Row,
    position: usize,
    selected: bool,
    now: i64,
    on_select: &Callback<usize>,
) -> Html {
    let on_select = on_select.clone();
    let top = position as u32 * ROW_PX;
    let class = classes!(
        "row",
        (!row.read).then_some("unread"),
        selected.then_some("selected")
    );
    let from = if row.from.is_empty() {
        "(unknown sender)"
    } else {
        &row.from
    };
    let subject = if row.subject.is_empty() {
        "(no subject)"
    } else {
        &row.subject
    };
    html! {
        <div key={format!("{}\n{}", row.account, row.uid)} role="option" id={format!("row-{position}")} aria-selected={selected.to_string()}
            class={class} style={format!("top:{top}px")}
            onclick={move |_| on_select.emit(position)}>
            <span class="from">{ from }</span>
            <span class="date">{ short_date(row.date, now) }</span>
            <span class="subject">
                if row.has_attachments {
                    <svg class="clip" role="img" aria-label="Has attachments" viewBox="0 0 16 16"
                        width="14" height="14">
                        <path d="M10.5 4.5 5.8 9.2a1.2 1.2 0 0 0 1.7 1.7l5-5a2.4 2.4 0 0 0-3.4-3.4l-5 5a3.6 3.6 0 0 0 5.1 5.1L13.5 8.4"
                            fill="none" stroke="currentColor" stroke-width="1.4" stroke-linecap="round" />
                    </svg>
                }
                { subject }
            </span>
            <span class="size">{ human_size(row.size) }</span>
        </div>
    }
}

/// The rows in view of the list, taken from the inbox for one render: the component gets
/// these few rows, never the whole inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// Position of the first row in `rows`.
    pub first: usize,
    /// The rows in view (and a margin).
    pub rows: Vec<Row>,
    /// How many rows the list has.
    pub len: usize,
    /// The selected row's position.
    pub selected: Option<usize>,
    /// Height of the whole list in pixels.
    pub total_px: u32,
}

impl ListPage {
    /// The page of `inbox` scrolled to `scroll_px` in a view `view_px` high.
    pub fn of(inbox: &Inbox, scroll_px: u32, view_px: u32) -> Self {
        let w = window(inbox.len(), ROW_PX, scroll_px, view_px);
        Self {
            first: w.first,
            rows: inbox
                .shown()
                .skip(w.first)
                .take(w.end - w.first)
                .cloned()
                .collect(),
            len: inbox.len(),
            selected: inbox.selected(),
            total_px: w.total_px,
        }
    }
}

/// What the list shows and what it reports.
#[derive(Properties, PartialEq)]
pub struct Props {
    /// The rows in view.
    pub page: ListPage,
    /// What an empty list says.
    pub empty_text: AttrValue,
    /// The scrolling element, for the root to measure and scroll.
    pub list_ref: NodeRef,
    /// The list scrolled.
    pub on_scroll: Callback<Event>,
    /// A row was clicked (its position).
    pub on_select: Callback<usize>,
}

/// The message list.
#[function_component(MessageList)]
pub fn message_list(props: &Props) -> Html {
    let page = &props.page;
    let now = (js_sys::Date::now() / 1000.0) as i64;
    let rows = page.rows.iter().enumerate().map(|(i, row)| {
        let position = page.first + i;
        row_view(
            row,
            position,
            page.selected == Some(position),
            now,
            &props.on_select,
        )
    });
    let active = page.selected.map(|s| format!("row-{s}"));
    html! {
        <div role="listbox" aria-label="Messages" class="list" tabindex="0"
            ref={props.list_ref.clone()} aria-activedescendant={active}
            data-count={page.len.to_string()} onscroll={props.on_scroll.clone()}>
            <div class="spacer" style={format!("height:{}px", page.total_px)}>
                { for rows }
            </div>
            if page.len == 0 {
                <p class="empty">{ props.empty_text.clone() }</p>
            }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_holds_only_the_rows_in_view_with_their_positions() {
        let rows: Vec<Row> = (0..5_000i64)
            .map(|i| Row {
                account: "a".into(),
                uid: format!("u{i}"),
                from: String::new(),
                subject: String::new(),
                date: i,
                size: 1,
                has_attachments: false,
                read: false,
                snippet: String::new(),
                search: String::new(),
            })
            .collect();
        let mut inbox = Inbox::new();
        inbox.apply(crate::state::inbox::Action::Load(rows));
        inbox.apply(crate::state::inbox::Action::Select(2_001));
        let page = ListPage::of(&inbox, 2_000 * ROW_PX, 10 * ROW_PX);
        assert_eq!(page.len, 5_000);
        assert_eq!(page.total_px, 5_000 * ROW_PX);
        assert_eq!(page.selected, Some(2_001));
        assert!(page.rows.len() < 50, "{} rows", page.rows.len());
        assert!(page.first <= 2_000 && page.first + page.rows.len() > 2_010);
        // Newest first: the row at position p is the (4,999 - p)th by date.
        assert_eq!(page.rows[0].date, 4_999 - page.first as i64);
        assert!(ListPage::of(&Inbox::new(), 0, 800).rows.is_empty());
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_size(820), "820 B");
        assert_eq!(human_size(14_200), "15 KB");
        assert_eq!(human_size(2_300_000), "2.3 MB");
    }
}
