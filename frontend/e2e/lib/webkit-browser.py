#!/usr/bin/python3
"""A WebKitGTK browser that WebKitWebDriver can drive and that keeps its website data on disk.

MiniBrowser keeps a driven session's website data in memory only, and WebKitWebDriver ends the
whole session (and the browser) when a page of it loses its web process. So after a tab crash
there is no IndexedDB left to reopen in MiniBrowser. This browser is WebKitGTK's engine, the same
library MiniBrowser runs, with a persistent website data directory (--data-dir): a session started
after the crash, on the same directory, finds the store as the crash left it. engines-crash.test.mjs
uses it for WebKitGTK (lib/engines.mjs, `launch(…, { dataDir })`).

Started by WebKitWebDriver (capability webkitgtk:browserOptions), which sets
WEBKIT_INSPECTOR_SERVER; WebKit answers the driver's automation session itself once automation
is allowed. Locked down as MiniBrowser is in lib/engines.mjs: no DNS prefetching, and an HTTP
proxy on a closed loopback port for every host but loopback.

Needs Debian's python3-gi and gir1.2-webkit2-4.1 (scripts/setup installs them).
"""

import argparse
import os
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import Gtk, WebKit2  # noqa: E402

NAME = "webpop-webkit-browser"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="where website data (IndexedDB, …) is kept")
    parser.add_argument("--automation", action="store_true", help="allow WebKitWebDriver to drive it")
    parser.add_argument("url", nargs="?", default="about:blank")
    args = parser.parse_args()

    Gtk.init(sys.argv[:1])
    data = os.path.abspath(args.data_dir)
    manager = WebKit2.WebsiteDataManager(
        base_data_directory=os.path.join(data, "data"),
        base_cache_directory=os.path.join(data, "cache"),
    )
    manager.set_network_proxy_settings(
        WebKit2.NetworkProxyMode.CUSTOM,
        WebKit2.NetworkProxySettings.new("http://127.0.0.1:9", ["127.0.0.1", "::1", "localhost"]),
    )
    context = WebKit2.WebContext.new_with_website_data_manager(manager)
    context.set_automation_allowed(args.automation)
    windows = []

    def new_view(automated):
        # <a ping> is off in WebKitGTK 2.50 whatever the setting says (it is deprecated).
        settings = WebKit2.Settings(enable_dns_prefetching=False)
        view = WebKit2.WebView(web_context=context, settings=settings, is_controlled_by_automation=automated)
        window = Gtk.Window(title=NAME)
        window.set_default_size(1280, 800)
        window.add(view)
        window.show_all()
        windows.append(window)

        def closed(*_):
            window.destroy()
            windows.remove(window)
            if not windows:
                Gtk.main_quit()

        view.connect("close", closed)
        view.connect(
            "web-process-terminated",
            lambda _view, reason: print(f"{NAME}: web process ended ({reason.value_nick})", file=sys.stderr, flush=True),
        )
        return view

    def automation_started(_context, session):
        info = WebKit2.ApplicationInfo.new()
        info.set_name(NAME)
        # The engine's own version, so that test logs say which WebKitGTK ran.
        info.set_version(WebKit2.get_major_version(), WebKit2.get_minor_version(), WebKit2.get_micro_version())
        session.set_application_info(info)
        session.connect("create-web-view", lambda _session: new_view(True))

    context.connect("automation-started", automation_started)
    if not args.automation:
        new_view(False).load_uri(args.url)
    Gtk.main()


if __name__ == "__main__":
    main()
