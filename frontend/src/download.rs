//! Bytes the person can save: object URLs for `<a download>` links, and saving at once (an
//! export) through a temporary link.

use wasm_bindgen::{JsCast as _, JsValue};

/// An object URL for `bytes` of type `mime`; revoke it with [`revoke`] when its link goes.
pub fn object_url(bytes: &[u8], mime: &str) -> Result<String, JsValue> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)?;
    web_sys::Url::create_object_url_with_blob(&blob)
}

/// Frees an object URL.
pub fn revoke(url: &str) {
    let _ = web_sys::Url::revoke_object_url(url);
}

/// Saves `bytes` as `file_name` (the browser's download).
pub fn save(bytes: &[u8], mime: &str, file_name: &str) -> Result<(), JsValue> {
    let url = object_url(bytes, mime)?;
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
