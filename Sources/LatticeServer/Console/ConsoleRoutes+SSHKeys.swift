import Foundation
import Hummingbird
import LatticeDomain

/// The console's SSH keys page: the namespace's keys for the SSH gateway, added by pasting
/// a `.pub` line and removed with a confirmation.
extension ConsoleRoutes {
    func registerSSHKeys(_ console: RouterGroup<LatticeRequestContext>) {
        console.get("ssh-keys") { request, _ in
            try await signedIn(request) { visit, principal in
                page(visit, title: "SSH keys", body: try await sshKeysPage(visit, principal), request: request)
            }
        }
        console.post("ssh-keys") { request, context in
            try await signedInForm(request, context) { visit, principal, form in
                var fields: [String: JSONValue] = ["publicKey": .string(form["publicKey"] ?? "")]
                if let name = form["name"], !name.isEmpty { fields["name"] = .string(name) }
                do {
                    let key = try await api.createSSHKey(principal: principal, body: .object(fields))
                    let flash = "Key “\(key.name)” added (\(key.fingerprint))."
                    return redirect("/console/ssh-keys?flash=" + Self.queryEscape(flash), visit)
                } catch let error as LatticeError {
                    return redirect("/console/ssh-keys?error=" + Self.queryEscape(error.message), visit)
                }
            }
        }
        console.post("ssh-keys/:id/delete") { request, context in
            try await signedInForm(request, context) { visit, principal, _ in
                try await api.deleteSSHKey(principal: principal, id: try context.parameters.require("id"))
                return redirect("/console/ssh-keys?flash=" + Self.queryEscape("Key removed."), visit)
            }
        }
    }

    func sshKeysPage(_ visit: Visit, _ principal: Principal) async throws -> String {
        let keys = try await api.sshKeys(principal: principal, page: PageRequest(page: 1, pageSize: 100)).nodes
        let rows = keys.map { key -> String in
            let remove = HTML.button(
                "Remove",
                action: "/console/ssh-keys/\(key.id)/delete",
                csrf: visit.csrf,
                confirm: "Remove '\(key.name)'? It stops opening your instances at once.",
                style: "danger"
            )
            return """
                <tr data-key="\(HTML.escape(key.id))"><td>\(HTML.escape(key.name))</td>
                <td><code>\(HTML.escape(key.fingerprint))</code></td>
                <td class="optional">\(HTML.escape(key.createdAt))</td><td>\(remove)</td></tr>
                """
        }.joined()
        return """
            <p>Keys registered here log in to any of your instances through the SSH gateway
            (ed25519 or ECDSA; RSA keys are stored but cannot log in), besides each instance's password.</p>
            <div class="table-wrap"><table>
              <thead><tr><th scope="col">Name</th><th scope="col">Fingerprint</th>
              <th scope="col" class="optional">Added</th><th scope="col">Actions</th></tr></thead>
              <tbody>\(rows)</tbody></table></div>
            <section class="card" aria-labelledby="add-key-heading">
              <h2 id="add-key-heading">Add SSH key</h2>
              <form method="post" action="/console/ssh-keys">
                \(HTML.csrfField(visit.csrf))
                <label for="key-name">Name (optional)</label><input id="key-name" name="name" maxlength="64">
                <label for="public-key">Public key (the line of your .pub file)</label>
                <textarea id="public-key" name="publicKey" required rows="3" maxlength="16384"
                  placeholder="ssh-ed25519 AAAA… you@laptop"></textarea>
                <p><button type="submit" class="primary" id="add-key">Add</button></p>
              </form>
            </section>
            """
    }
}
