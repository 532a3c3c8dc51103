import Foundation

/// Lines for operators on stdout, written unbuffered so a supervising process (or a test)
/// sees `listening on ...` the moment the port is bound.
enum Console {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}
