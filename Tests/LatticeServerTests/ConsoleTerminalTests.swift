import Foundation
import Testing

@testable import LatticeServer

/// The web terminal's parts that need no browser: its socket's path, the xterm.js bundle
/// made from Debian's CommonJS modules, and the page templates being registered.
@Suite(.timeLimit(.minutes(10))) struct ConsoleTerminalTests {
    @Test func onlyAnInstancesTerminalSocketPathIsOne() {
        let found = ConsoleRoutes.terminalSocketPath("/console/instances/host-cluster/instance-1/terminal/socket")
        #expect(found?.cluster == "host-cluster" && found?.name == "instance-1")
        for path in [
            "/console/instances/host-cluster/instance-1/terminal",
            "/console/instances/host-cluster//terminal/socket",
            "/console/instances/host-cluster/instance-1/terminal/socket/",
            "/mdc/api/v1/instances/host-cluster/instance-1/terminal/socket",
            "console/instances/host-cluster/instance-1/terminal/socket",
            "/",
        ] {
            #expect(ConsoleRoutes.terminalSocketPath(path) == nil, "\(path)")
        }
    }

    @Test func theModulesBecomeOneScriptThatResolvesRelativeRequires() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(UUID().uuidString)
        defer { try? FileManager.default.removeItem(at: root) }
        let lib = root.appendingPathComponent("lib")
        try FileManager.default.createDirectory(
            at: lib.appendingPathComponent("public"),
            withIntermediateDirectories: true
        )
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("css"),
            withIntermediateDirectories: true
        )
        try #"exports.Terminal = require("../core/Term").Term;"#.write(
            to: lib.appendingPathComponent("public/Terminal.js"),
            atomically: true,
            encoding: .utf8
        )
        try FileManager.default.createDirectory(
            at: lib.appendingPathComponent("core"),
            withIntermediateDirectories: true
        )
        try "exports.Term = function () {};".write(
            to: lib.appendingPathComponent("core/Term.js"),
            atomically: true,
            encoding: .utf8
        )
        try "throw new Error('a test');".write(
            to: lib.appendingPathComponent("core/Term.test.js"),
            atomically: true,
            encoding: .utf8
        )
        try ".xterm { color: white }".write(
            to: root.appendingPathComponent("css/xterm.css"),
            atomically: true,
            encoding: .utf8
        )

        let vendor = ConsoleVendor.load(directory: root.path)
        #expect(vendor.missing == nil)
        let script = String(decoding: vendor.files["xterm.js"]?.bytes ?? [], as: UTF8.self)
        #expect(script.contains(#"defined["public/Terminal"]"#) && script.contains(#"defined["core/Term"]"#))
        #expect(!script.contains("a test"), "the modules' tests are left out")
        #expect(script.contains(#"window.Terminal = load("public/Terminal").Terminal;"#))
        #expect(vendor.files["xterm.css"]?.bytes == Array(".xterm { color: white }".utf8))
        #expect(vendor.version.count == 12 && vendor.version != "none")

        let missing = ConsoleVendor.load(directory: root.appendingPathComponent("nothing").path)
        #expect(missing.files.isEmpty)
        #expect(missing.missing?.contains("node-xterm") == true, "the operator is told what to install")
    }

    @Test func everyTemplateInTheSourcesIsRegistered() throws {
        let templates = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/LatticeServer/Console/Templates")
        let files = try FileManager.default.contentsOfDirectory(atPath: templates.path)
            .filter { $0.hasSuffix(".mustache") }.map { String($0.dropLast(".mustache".count)) }
        #expect(!files.isEmpty)
        #expect(Set(files) == Set(ConsoleTemplates.sources.map(\.name)), "a template file no page can render")
    }
}
