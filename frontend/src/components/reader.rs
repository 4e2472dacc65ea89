//! The reader: headers, plain text, HTML in a sandboxed iframe (sanitized, CSP without
//! scripts, remote images only on request), inline `cid:` images, attachments to download,
//! the source, and the message as .eml.

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

/// The open message.
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
    /// Remote images were allowed for this message.
    pub images_loaded: bool,
    /// Showing the source.
    pub show_source: bool,
    /// Showing plain text instead of HTML.
    pub prefer_text: bool,
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
            images_loaded: false,
            show_source: false,
            prefer_text: false,
            headers_only,
            downloads,
            eml_url,
        }
    }

    /// Allows remote images in this message.
    pub fn load_images(&mut self) {
        self.images_loaded = true;
        self.html = safe_html_of(
            &self.raw,
            RenderOptions {
                load_remote_images: true,
            },
        );
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

/// What the reader's buttons do.
#[derive(Clone)]
pub struct Actions {
    /// "Load images".
    pub load_images: Callback<()>,
    /// "View source".
    pub toggle_source: Callback<()>,
    /// "Show plain text" / "Show HTML".
    pub toggle_text: Callback<()>,
    /// "Mark unread".
    pub mark_unread: Callback<()>,
    /// "Delete".
    pub delete: Callback<()>,
    /// "Download the whole message".
    pub fetch_whole: Callback<()>,
    /// "Back" (narrow screens).
    pub close: Callback<()>,
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

/// The reader for `opened`.
pub fn view(opened: &Opened, actions: &Actions) -> Html {
    let d = &opened.display;
    let subject = if d.subject.is_empty() {
        "(no subject)"
    } else {
        &d.subject
    };
    let header = |name: &'static str, value: String| {
        (!value.is_empty()).then(|| html! { <><dt>{ name }</dt><dd>{ value }</dd></> })
    };
    let body = match (&opened.html, opened.prefer_text) {
        (Some(html), false) => {
            let notice = (html.remote_images_blocked > 0 && !opened.images_loaded).then(|| {
                let n = html.remote_images_blocked;
                let plural = if n == 1 { "" } else { "s" };
                html! {
                    <p class="notice">
                        { format!("{n} remote image{plural} blocked to protect your privacy. ") }
                        { button("Load images", &actions.load_images) }
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
                <button type="button" class="back" onclick={let c = actions.close.clone(); move |_| c.emit(())}>
                    { "Back" }
                </button>
                { button("Mark unread", &actions.mark_unread) }
                { button("Delete", &actions.delete) }
                { button(if opened.show_source { "Hide source" } else { "View source" }, &actions.toggle_source) }
                if opened.html.is_some() && d.text.is_some() {
                    { button(if opened.prefer_text { "Show HTML" } else { "Show plain text" }, &actions.toggle_text) }
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
                    { button("Download the whole message", &actions.fetch_whole) }
                </p>
            }
            { for attachments }
            if opened.show_source {
                <pre aria-label="Message source" class="source">
                    { String::from_utf8_lossy(&opened.raw).into_owned() }
                </pre>
            } else {
                { body }
            }
        </article>
    }
}
