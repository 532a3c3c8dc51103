import Foundation

/// Server-rendered HTML for the console. Every value goes through `escape`, so a
/// `displayName` of `<script>` is shown as text.
enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// A hidden CSRF field for a form.
    static func csrfField(_ token: String) -> String {
        #"<input type="hidden" name="csrf" value="\#(escape(token))">"#
    }

    /// A one-button form posting to `action`, optionally confirmed.
    static func button(
        _ label: String,
        action: String,
        csrf: String,
        confirm: String? = nil,
        style: String = ""
    ) -> String {
        let onsubmit = confirm.map { #" data-confirm="\#(escape($0))""# } ?? ""
        return
            #"<form method="post" action="\#(escape(action))" class="inline"\#(onsubmit)>\#(csrfField(csrf))<button type="submit" class="\#(style)">\#(escape(label))</button></form>"#
    }

    /// A one-button form posting `fields` (hidden) to `action`, optionally confirmed.
    static func form(
        _ label: String,
        action: String,
        fields: [String: String],
        csrf: String,
        confirm: String? = nil,
        style: String = ""
    ) -> String {
        let onsubmit = confirm.map { #" data-confirm="\#(escape($0))""# } ?? ""
        let hidden = fields.sorted { $0.key < $1.key }.map {
            #"<input type="hidden" name="\#(escape($0.key))" value="\#(escape($0.value))">"#
        }.joined()
        return #"<form method="post" action="\#(escape(action))" class="inline"\#(onsubmit)>"#
            + csrfField(csrf) + hidden + #"<button type="submit" class="\#(style)">\#(escape(label))</button></form>"#
    }

    static func page(
        title: String,
        namespace: String?,
        csrf: String,
        flash: String? = nil,
        error: String? = nil,
        body: String,
        script: String = ""
    ) -> String {
        let nav: String
        if let namespace {
            nav = """
                <nav aria-label="Main">
                  <a href="/console/instances">Instances</a>
                  <a href="/console/catalog">GPU catalog</a>
                  <a href="/console/tokens">API Credentials</a>
                  <a href="/console/images">Images</a>
                  <a href="/console/billing">Billing</a>
                  <a href="/console/ssh-keys">SSH keys</a>
                  <a href="/console/activity">Activity</a>
                  <span class="who">\(escape(namespace))</span>
                  <form method="post" action="/console/logout" class="inline">\(csrfField(csrf))<button type="submit">Sign out</button></form>
                </nav>
                """
        } else {
            nav = ""
        }
        let notices =
            (flash.map { #"<p class="flash" role="status">\#(escape($0))</p>"# } ?? "")
            + (error.map { #"<p class="error" role="alert">\#(escape($0))</p>"# } ?? "")
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · Lattice</title>
            <style>\(css)</style>
            </head>
            <body>
            <header><a class="brand" href="/console/instances">Lattice</a>\(nav)</header>
            <main>
            <h1>\(escape(title))</h1>
            \(notices)
            \(body)
            </main>
            <script>\(confirmScript)\(script)</script>
            </body>
            </html>
            """
    }

    /// Asks before destructive forms (those with `data-confirm`) are sent.
    static let confirmScript = """
        document.querySelectorAll('form[data-confirm]').forEach(function(f){f.addEventListener('submit',function(e){if(!window.confirm(f.dataset.confirm))e.preventDefault();});});
        """

    static let css = """
        *{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,sans-serif;color:#1b1f24;background:#f6f7f9}
        header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;padding:.6rem 1rem;background:#15233b;color:#fff}
        header a{color:#fff;text-decoration:none}header a:focus,header a:hover{text-decoration:underline}
        .brand{font-weight:700;font-size:1.1rem;margin-right:1rem}nav{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;flex:1}
        .who{margin-left:auto;opacity:.8}main{padding:1rem;max-width:1200px;margin:auto}h1{font-size:1.4rem}
        table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
        th{background:#eef1f5}.table-wrap{overflow-x:auto}code{font-size:.85em;word-break:break-all}
        form.inline{display:inline}button{font:inherit;padding:.3rem .7rem;border:1px solid #8a94a3;border-radius:4px;background:#fff;cursor:pointer}
        button:focus,input:focus,select:focus,a:focus{outline:3px solid #4c8dff;outline-offset:1px}button.primary{background:#1f6feb;color:#fff;border-color:#1f6feb}
        button.danger{color:#b42318;border-color:#b42318}label{display:block;font-weight:600;margin-top:.6rem}
        input,select{font:inherit;padding:.35rem;border:1px solid #8a94a3;border-radius:4px;width:100%;max-width:28rem}
        input[type=checkbox]{width:auto}.card{background:#fff;border:1px solid #e3e6ea;border-radius:6px;padding:1rem;margin:1rem 0}
        .flash{background:#e6f4ea;border:1px solid #34a853;padding:.5rem;border-radius:4px}.error{background:#fdecea;border:1px solid #b42318;padding:.5rem;border-radius:4px}
        .status{font-weight:600}.status-Running{color:#1a7f37}.status-Failed{color:#b42318}.status-Stopped{color:#57606a}
        .secret{font-family:monospace}.actions form{margin:.15rem}.inline-fields{display:flex;flex-wrap:wrap;gap:.3rem;align-items:center}
        .inline-fields input{width:9rem}
        @media (max-width:640px){th.optional,td.optional{display:none}main{padding:.5rem}header{padding:.5rem}}
        """
}

/// `application/x-www-form-urlencoded` bodies.
enum FormBody {
    static func parse(_ data: Data) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in String(decoding: data, as: UTF8.self).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
            }
            guard let key = parts.first else { continue }
            fields[decode(key)] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }
}
