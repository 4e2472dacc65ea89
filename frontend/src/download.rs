//! Bytes the person can save: object URLs for `<a download>` links and inert pictures, and
//! saving at once (an export) through a temporary link.
//!
//! An object URL belongs to the app's origin, and a browser renders whatever type the blob
//! claims when such a URL is opened in a tab. So mail bytes are only ever typed
//! [`DOWNLOAD_TYPE`] (the browser saves them), except raster pictures
//! ([`inert_image_type`]), which are shown through `<img>` only: an HTML or SVG attachment can
//! never run its script as webpop.

use wasm_bindgen::{JsCast as _, JsValue};
use webpop_shared::mime::{inert_image_type, DOWNLOAD_TYPE};

fn blob_url(bytes: &[u8], mime: &str) -> Result<String, JsValue> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)?;
    web_sys::Url::create_object_url_with_blob(&blob)
}

/// An object URL to download `bytes` (never rendered); revoke it with [`revoke`].
pub fn object_url(bytes: &[u8]) -> Result<String, JsValue> {
    blob_url(bytes, DOWNLOAD_TYPE)
}

/// An object URL for an `<img>` of `bytes`, if `content_type` is an inert raster type.
pub fn image_url(bytes: &[u8], content_type: &str) -> Option<String> {
    blob_url(bytes, inert_image_type(content_type)?).ok()
}

/// Frees an object URL.
pub fn revoke(url: &str) {
    let _ = web_sys::Url::revoke_object_url(url);
}

/// Saves `bytes` as `file_name` (the browser's download).
pub fn save(bytes: &[u8], file_name: &str) -> Result<(), JsValue> {
    let url = object_url(bytes)?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| JsValue::from_str("no document"))?;
    let link: web_sys::HtmlAnchorElement = document.create_element("a")?.dyn_into()?;
    link.set_href(&url);
    link.set_download(file_name);
    link.click();
    // The download has started from the URL; free it once this task is over.
    let done = url.clone();
    wasm_bindgen_futures::spawn_local(async move {
        gloo_timers::future::TimeoutFuture::new(10_000).await;
        revoke(&done);
    });
    Ok(())
}
