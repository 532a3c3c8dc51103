import Foundation
import Hummingbird
import LatticeDomain

/// The console's SSH keys page: the namespace's keys for the SSH gateway, added by pasting
/// a `.pub` line and removed with a confirmation.
extension ConsoleRoutes {
    func registerSSHKeys(_ console: RouterGroup<LatticeRequestContext>) {
        console.get("ssh-keys") { request, _ in
            try await signedIn(request) { visit, principal in
                try await sshKeysPage(visit, request, principal)
            }
        }
        console.post("ssh-keys") { request, context in
            try await signedInForm(request, context) { visit, principal, form in
                var fields: [String: JSONValue] = ["publicKey": .string(form["publicKey"] ?? "")]
                if let name = form["name"], !name.isEmpty { fields["name"] = .string(name) }
                do {
                    let key = try await api.createSSHKey(principal: principal, body: .object(fields))
                    let message = "Key “\(key.name)” added (\(key.fingerprint))."
                    return redirect(flashed("/console/ssh-keys", message, visit), visit)
                } catch let error as LatticeError {
                    return try await sshKeysPage(visit, nil, principal, form: form, error: error)
                }
            }
        }
        console.post("ssh-keys/:id/delete") { request, context in
            try await signedInForm(request, context) { visit, principal, _ in
                do {
                    try await api.deleteSSHKey(principal: principal, id: try context.parameters.require("id"))
                    return redirect(flashed("/console/ssh-keys", "Key removed.", visit), visit)
                } catch let error as LatticeError {
                    return try await sshKeysPage(visit, nil, principal, error: error)
                }
            }
        }
    }

    func sshKeysPage(
        _ visit: Visit,
        _ request: Request?,
        _ principal: Principal,
        form: [String: String] = [:],
        error: LatticeError? = nil
    ) async throws -> Response {
        let keys = try await api.sshKeys(principal: principal, page: PageRequest(page: 1, pageSize: 100)).nodes
        let view = ConsoleView.SSHKeysPage(
            csrf: visit.csrf,
            keys: keys.map(ConsoleView.SSHKeyRow.init),
            form: .init(name: form["name"] ?? "", publicKey: form["publicKey"] ?? "")
        )
        return show(visit, request, title: "SSH keys", page: "ssh-keys", template: "ssh-keys", view, error: error)
    }
}

extension ConsoleView {
    struct SSHKeyRow {
        var id: String
        var name: String
        var fingerprint: String
        var createdAt: String
        var remove: Button

        init(_ key: SSHKeyWire) {
            id = key.id
            name = key.name
            fingerprint = key.fingerprint
            createdAt = key.createdAt
            remove = Button(
                "Remove",
                action: "/console/ssh-keys/\(key.id)/delete",
                confirm: "Remove '\(key.name)'? It stops opening your instances at once.",
                style: "danger"
            )
        }
    }

    /// `ssh-keys.mustache`.
    struct SSHKeysPage {
        struct Form {
            var name: String
            var publicKey: String
        }

        var csrf: String
        var keys: [SSHKeyRow]
        var form: Form
    }
}
