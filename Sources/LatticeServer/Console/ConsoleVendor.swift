import Crypto
import Foundation
import Synchronization

/// xterm.js for the web terminal, served by Lattice from Debian's `node-xterm` (its
/// CommonJS modules) and `libjs-xterm` (its stylesheet), never from a CDN.
///
/// Debian ships xterm.js 3 as separate CommonJS modules (its browser file only `require`s
/// them), so at start the modules are wrapped into one script with a small loader of our
/// own: each module becomes a function of `(require, module, exports)` under its path, and
/// `require` resolves paths relative to the module asking. The script sets
/// `window.Terminal`.
struct ConsoleVendor: Sendable {
    var files: [String: ConsoleAssets.Asset]
    /// Why there is no terminal, when the files were not found.
    var missing: String?
    var version: String

    static let defaultDirectory = "/usr/share/nodejs/xterm"

    private static let loaded = Mutex<[String: ConsoleVendor]>([:])

    /// The files of `directory`, read once per process.
    static func cached(directory: String) -> ConsoleVendor {
        if let vendor = loaded.withLock({ $0[directory] }) { return vendor }
        let vendor = load(directory: directory)
        loaded.withLock { $0[directory] = vendor }
        return vendor
    }

    static func load(directory: String) -> ConsoleVendor {
        let root = URL(fileURLWithPath: directory)
        let lib = root.appendingPathComponent("lib")
        guard let modules = try? modules(under: lib), modules["public/Terminal"] != nil else {
            return ConsoleVendor(
                files: [:],
                missing: "the web terminal needs xterm.js: install Debian's node-xterm and libjs-xterm "
                    + "(or give --xterm-dir); \(lib.path) has no public/Terminal.js",
                version: "none"
            )
        }
        let stylesheets = [
            root.appendingPathComponent("css/xterm.css"),
            root.deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("javascript/xterm/xterm.css"),
        ]
        let css = stylesheets.lazy.compactMap { try? Data(contentsOf: $0) }.first ?? Data()
        let script = Data(bundle(modules).utf8)
        var hash = SHA256()
        hash.update(data: script)
        hash.update(data: css)
        return ConsoleVendor(
            files: [
                "xterm.js": .init(contentType: "text/javascript; charset=utf-8", bytes: Array(script)),
                "xterm.css": .init(contentType: "text/css; charset=utf-8", bytes: Array(css)),
            ],
            missing: nil,
            version: hash.finalize().prefix(6).map { String(format: "%02x", $0) }.joined()
        )
    }

    /// Every module under `lib` but the tests, by its path without `.js`.
    static func modules(under lib: URL) throws -> [String: String] {
        guard let walker = FileManager.default.enumerator(at: lib, includingPropertiesForKeys: nil) else {
            throw CocoaError(.fileNoSuchFile)
        }
        var modules: [String: String] = [:]
        let prefix = lib.standardizedFileURL.path + "/"
        for case let url as URL in walker
        where url.pathExtension == "js" && !url.lastPathComponent.hasSuffix(".test.js") {
            let path = url.standardizedFileURL.path
            guard path.hasPrefix(prefix) else { continue }
            let name = String(path.dropFirst(prefix.count).dropLast(3))
            modules[name] = try String(contentsOf: url, encoding: .utf8)
        }
        return modules
    }

    /// One script: the loader, the modules, and `window.Terminal`.
    static func bundle(_ modules: [String: String]) -> String {
        var script = """
            /* xterm.js (MIT, from Debian's node-xterm), its CommonJS modules joined by Lattice. */
            (function () {
            "use strict";
            var defined = {}, loaded = {};
            function resolve(from, path) {
              var parts = from.split("/"); parts.pop();
              path.replace(/\\.js$/, "").split("/").forEach(function (part) {
                if (part === "..") parts.pop(); else if (part !== ".") parts.push(part);
              });
              return parts.join("/");
            }
            function load(name) {
              if (loaded[name]) return loaded[name].exports;
              if (!defined[name]) throw new Error("xterm bundle: no module " + name);
              var module = { exports: {} };
              loaded[name] = module;
              defined[name].call(module.exports, function (path) { return load(resolve(name, path)); },
                module, module.exports);
              return module.exports;
            }

            """
        for name in modules.keys.sorted() {
            script += "defined[\(quoted(name))] = function (require, module, exports) {\n"
            script += modules[name]!
            script += "\n};\n"
        }
        script += "window.Terminal = load(\"public/Terminal\").Terminal;\n})();\n"
        return script
    }

    static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
