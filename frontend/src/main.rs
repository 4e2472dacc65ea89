//! webpop's web app. Built for the browser by trunk (see `index.html` and `Trunk.toml` at the repo
//! root); it also compiles natively so `cargo clippy --workspace` and `cargo test` cover it.

#![forbid(unsafe_code)]

use yew::prelude::*;

/// The root component.
#[function_component(App)]
fn app() -> Html {
    html! {
        <main>
            <h1>{ "webpop" }</h1>
            <p>{ "A POP3 mail client that runs in your browser." }</p>
        </main>
    }
}

fn main() {
    yew::Renderer::<App>::new().render();
}
