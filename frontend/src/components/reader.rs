//! The reader: headers, plain text, HTML in a sandboxed iframe (sanitized, CSP without
//! scripts, remote images only on request), inline `cid:` images, attachments to download,
//! the source, and the message as .eml.

use std::rc::Rc;
use webpop_shared::export::{eml_file_name, safe_file_name};
use webpop_shared::mime::{self, Display, Mailbox};
use webpop_shared::reader::{safe_html_of, RenderOptions, SafeHtml};

use yew::prelude::*;

use super::message_list::human_size;
use crate::download;

/// An attachment with its download link.
#[derive(Debug)]
pub struct Download {
    /// File name offered.
    pub name: String,
    /// Size in bytes.
    pub size: usize,
    /// Object URL to save it, typed `application/octet-stream` (revoked when the message
    /// closes).
    pub url: String,
    /// Object URL of the picture, for an inert raster image shown through `<img>` only.
    pub image: Option<String>,
}

/// The open message, prepared once when it is read from the store. How it is shown (source,
/// plain text, remote images) is the reader's own state.
#[derive(Debug)]
pub struct Opened {
    /// Account.
    pub account: String,
    /// UIDL.
    pub uid: String,
    /// Raw bytes, as stored.
    pub raw: Vec<u8>,
    /// The display model.
    pub display: Display,
    /// The sanitized HTML document, if the message has HTML.
    pub html: Option<SafeHtml>,
    /// Only the headers are stored (a large message).
    pub headers_only: bool,
    /// Attachment links.
    pub downloads: Vec<Download>,
    /// The .eml link.
    pub eml_url: Option<String>,
}

impl Opened {
    /// Prepares `raw` for reading.
    pub fn new(account: String, uid: String, raw: Vec<u8>, headers_only: bool) -> Self {
        let display = mime::display(&raw).unwrap_or_default();
        let html = safe_html_of(&raw, RenderOptions::default());
        // Inline images of an HTML body show in it; everything else is listed to download.
        let shown_inline =
            |a: &&mime::Attachment| html.is_some() && a.inline && a.content_id.is_some();
        let downloads = display
            .attachments
            .iter()
            .filter(|a| !shown_inline(a))
            .filter_map(|a| {
                let bytes = mime::attachment(&raw, a.part)?;
                let url = download::object_url(&bytes).ok()?;
                Some(Download {
                    name: safe_file_name(&a.name, "attachment"),
                    size: a.size,
                    url,
                    image: download::image_url(&bytes, &a.content_type),
                })
            })
            .collect();
        let eml_url = download::object_url(&raw).ok();
        Self {
            account,
            uid,
            raw,
            display,
            html,
            headers_only,
            downloads,
            eml_url,
        }
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        for d in &self.downloads {
            download::revoke(&d.url);
            if let Some(image) = &d.image {
                download::revoke(image);
            }
        }
        if let Some(url) = &self.eml_url {
            download::revoke(url);
        }
    }
}

/// The open message and what the reader's buttons ask of the app.
#[derive(Properties)]
pub struct Props {
    /// The message.
    pub opened: Rc<Opened>,
    /// "Mark unread".
    pub on_mark_unread: Callback<()>,
    /// "Delete".
    pub on_delete: Callback<()>,
    /// "Download the whole message".
    pub on_fetch_whole: Callback<()>,
    /// "Back" (narrow screens).
    pub on_close: Callback<()>,
}

impl PartialEq for Props {
    fn eq(&self, other: &Self) -> bool {
        // An open message is never changed, only replaced.
        Rc::ptr_eq(&self.opened, &other.opened)
            && self.on_mark_unread == other.on_mark_unread
            && self.on_delete == other.on_delete
            && self.on_fetch_whole == other.on_fetch_whole
            && self.on_close == other.on_close
    }
}

fn people(list: &[Mailbox]) -> String {
    list.iter()
        .map(|m| match (&m.name, &m.address) {
            (Some(n), Some(a)) => format!("{n} <{a}>"),
            (Some(n), None) => n.clone(),
            (None, Some(a)) => a.clone(),
            (None, None) => String::new(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn long_date(date: Option<i64>) -> String {
    date.map(|d| {
        let js = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(d as f64 * 1000.0));
        String::from(js.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
    })
    .unwrap_or_default()
}

fn button(label: &'static str, on: &Callback<()>) -> Html {
    let on = on.clone();
    html! { <button type="button" onclick={move |_| on.emit(())}>{ label }</button> }
}

/// The reader. Give it a new `key` for each message read from the store, so that it starts
/// with the HTML (if any), remote images blocked and the source hidden.
#[function_component(Reader)]
pub fn reader(props: &Props) -> Html {
    let opened = &*props.opened;
    let show_source = use_state(|| false);
    let prefer_text = use_state(|| false);
    // The HTML again with remote images, once the person asked for them.
    let with_images = use_state(|| None::<Option<SafeHtml>>);
    let load_images = {
        let (with_images, raw) = (with_images.clone(), Rc::clone(&props.opened));
        Callback::from(move |()| {
            let options = RenderOptions {
                load_remote_images: true,
            };
            with_images.set(Some(safe_html_of(&raw.raw, options)));
        })
    };
    let toggle_source = {
        let show_source = show_source.clone();
        Callback::from(move |()| show_source.set(!*show_source))
    };
    let toggle_text = {
        let prefer_text = prefer_text.clone();
        Callback::from(move |()| prefer_text.set(!*prefer_text))
    };
    let images_loaded = with_images.is_some();
    let html = match &*with_images {
        Some(html) => html,
        None => &opened.html,
    };
    let d = &opened.display;
    let subject = if d.subject.is_empty() {
        "(no subject)"
    } else {
        &d.subject
    };
    let header = |name: &'static str, value: String| {
        (!value.is_empty()).then(|| html! { <><dt>{ name }</dt><dd>{ value }</dd></> })
    };
    let body = match (html, *prefer_text) {
        (Some(html), false) => {
            let notice = (html.remote_images_blocked > 0 && !images_loaded).then(|| {
                let n = html.remote_images_blocked;
                let plural = if n == 1 { "" } else { "s" };
                html! {
                    <p class="notice">
                        { format!("{n} remote image{plural} blocked to protect your privacy. ") }
                        { button("Load images", &load_images) }
                    </p>
                }
            });
            html! {
                <>
                    { for notice }
                    <iframe title="Message content" class="html-body"
                        sandbox="allow-popups allow-popups-to-escape-sandbox"
                        referrerpolicy="no-referrer"
                        srcdoc={html.document.clone()} />
                </>
            }
        }
        _ => html! {
            <pre class="text-body">{ d.text.clone().unwrap_or_default() }</pre>
        },
    };
    let attachments = (!opened.downloads.is_empty()).then(|| {
        html! {
            <ul aria-label="Attachments" class="attachments">
                { for opened.downloads.iter().map(|a| html! {
                    <li>
                        <a href={a.url.clone()} download={a.name.clone()}>{ &a.name }</a>
                        <span class="size">{ format!(" {}", human_size(a.size as u64)) }</span>
                        if let Some(src) = &a.image {
                            <img class="attachment-preview" src={src.clone()} alt={a.name.clone()} />
                        }
                    </li>
                }) }
            </ul>
        }
    });
    let eml = opened.eml_url.as_ref().map(|url| {
        html! {
            <a class="button" href={url.clone()} download={eml_file_name(&d.subject)}>
                { "Download .eml" }
            </a>
        }
    });
    html! {
        <article aria-label="Message" class="reader">
            <div class="reader-actions">
                <button type="button" class="back" onclick={let c = props.on_close.clone(); move |_| c.emit(())}>
                    { "Back" }
                </button>
                { button("Mark unread", &props.on_mark_unread) }
                { button("Delete", &props.on_delete) }
                { button(if *show_source { "Hide source" } else { "View source" }, &toggle_source) }
                if html.is_some() && d.text.is_some() {
                    { button(if *prefer_text { "Show HTML" } else { "Show plain text" }, &toggle_text) }
                }
                { for eml }
            </div>
            <h2>{ subject }</h2>
            <dl class="headers">
                { for header("From", people(&d.from)) }
                { for header("To", people(&d.to)) }
                { for header("Cc", people(&d.cc)) }
                { for header("Date", long_date(d.date)) }
            </dl>
            if opened.headers_only {
                <p class="notice">
                    { "This message is large, so only its headers were downloaded. " }
                    { button("Download the whole message", &props.on_fetch_whole) }
                </p>
            }
            { for attachments }
            if *show_source {
                <pre aria-label="Message source" class="source">
                    { String::from_utf8_lossy(&opened.raw).into_owned() }
                </pre>
            } else {
                { body }
            }
        </article>
    }
}

/// What the reader pane shows with no message open.
pub fn placeholder(empty: bool) -> Html {
    html! {
        <div class="placeholder">
            if empty {
                <p>{ "No mail here yet." }</p>
            } else {
                <p>{ "Select a message to read it." }</p>
                <p class="hint">{ "j / k move, Enter opens, Delete deletes, / searches." }</p>
            }
        </div>
    }
}
