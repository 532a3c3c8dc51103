import Crypto
import Foundation
import Mustache

/// The console's pages come from the Mustache templates in `Console/Templates` (compiled
/// into the binary, so a static build needs no files beside it). `{{value}}` escapes HTML,
/// so a `displayName` of `<script>` is shown as text; only the layout's `{{{content}}}`, a
/// page the library itself rendered, goes in unescaped.
enum ConsoleTemplates {
    static let sources: [(name: String, text: [UInt8])] = [
        ("layout", PackageResources.layout_mustache),
        ("csrf", PackageResources.csrf_mustache),
        ("button", PackageResources.button_mustache),
        ("login", PackageResources.login_mustache),
        ("instance-row", PackageResources.instance_row_mustache),
        ("instance-table", PackageResources.instance_table_mustache),
        ("instances", PackageResources.instances_mustache),
        ("instance", PackageResources.instance_mustache),
        ("tokens", PackageResources.tokens_mustache),
        ("token-own", PackageResources.token_own_mustache),
        ("catalog", PackageResources.catalog_mustache),
        ("ssh-keys", PackageResources.ssh_keys_mustache),
        ("activity", PackageResources.activity_mustache),
        ("billing", PackageResources.billing_mustache),
        ("images", PackageResources.images_mustache),
        ("admin-tenants", PackageResources.admin_tenants_mustache),
        ("admin-instances", PackageResources.admin_instances_mustache),
        ("admin-nodes", PackageResources.admin_nodes_mustache),
        ("admin-prices", PackageResources.admin_prices_mustache),
        ("terminal", PackageResources.terminal_mustache),
        ("message", PackageResources.message_mustache),
    ]

    /// Every template, parsed once. They are part of the binary and every one is rendered by
    /// `ConsoleTemplateTests`, so one that does not parse is a build that never ships.
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in sources {
            do {
                try library.register(String(decoding: text, as: UTF8.self), named: name)
            } catch {
                preconditionFailure("console template '\(name)' does not parse: \(error)")
            }
        }
        return library
    }()

    /// `name` rendered with `view` (a struct whose stored properties the template names).
    static func render(_ name: String, _ view: Any) -> String {
        guard let html = library.render(view, withTemplate: name) else {
            preconditionFailure("no console template named '\(name)'")
        }
        return html
    }
}

/// The console's stylesheet and script, served from `/console/static/` so that no page
/// needs inline code (the pages' Content Security Policy allows none).
enum ConsoleAssets {
    struct Asset: Sendable {
        var contentType: String
        var bytes: [UInt8]
    }

    static let files: [String: Asset] = [
        "console.css": Asset(contentType: "text/css; charset=utf-8", bytes: PackageResources.console_css),
        "console.js": Asset(contentType: "text/javascript; charset=utf-8", bytes: PackageResources.console_js),
    ]

    /// Changes whenever an asset does: pages link `?v=<version>`, so a browser that cached
    /// the old files fetches the new ones after an upgrade.
    static let version: String = {
        var hash = SHA256()
        for name in files.keys.sorted() { hash.update(data: files[name]!.bytes) }
        return hash.finalize().prefix(6).map { String(format: "%02x", $0) }.joined()
    }()
}
