import Foundation
import Hummingbird
import LatticeDomain

/// The console's API Credentials page: the namespace's tokens, a new one's secret shown
/// once, regenerate and delete.
extension ConsoleRoutes {
    func registerTokens(_ console: RouterGroup<LatticeRequestContext>) {
        console.get("tokens") { request, _ in
            try await signedIn(request) { visit, principal in
                var revealed: TokenWire?
                if let id = visit.sessionID { revealed = try await sessions.takeRevealed(id) }
                return try await tokensPage(visit, request, principal, revealed: revealed)
            }
        }
        console.post("tokens") { request, context in
            try await signedInForm(request, context) { visit, principal, form in
                do {
                    // Post, then redirect: a refresh shows the page again, it does not
                    // create another token. The secret is shown once, by that page.
                    let made = try await api.createToken(
                        principal: principal,
                        body: FormBody.json(form, ["name", "validityDays"])
                    )
                    if let id = visit.sessionID { try await sessions.reveal(made, in: id) }
                    return redirect("/console/tokens", visit)
                } catch let error as LatticeError {
                    return try await tokensPage(visit, nil, principal, form: form, error: error)
                }
            }
        }
        console.post("tokens/:id/:verb") { request, context in
            try await signedInForm(request, context) { visit, principal, _ in
                let id = try context.parameters.require("id")
                do {
                    return try await tokenVerb(visit, principal, id: id, verb: try context.parameters.require("verb"))
                } catch let error as LatticeError {
                    return try await tokensPage(visit, nil, principal, error: error)
                }
            }
        }
    }

    func tokenVerb(_ visit: Visit, _ principal: Principal, id: String, verb: String) async throws -> Response {
        switch verb {
        case "regenerate":
            let made = try await api.regenerateToken(principal: principal, id: id)
            // Regenerating the session's own token ends the session (its secret is gone);
            // the new secret is shown once here instead.
            guard made.id != visit.session?.tokenID else {
                let own = ConsoleView.Revealed(name: made.name, secret: made.token ?? "")
                return show(visit, nil, title: "API Credentials", page: "tokens", template: "token-own", own)
            }
            if let session = visit.sessionID { try await sessions.reveal(made, in: session) }
            return redirect("/console/tokens", visit)
        case "delete":
            try await api.deleteToken(principal: principal, id: id)
            return redirect(flashed("/console/tokens", "Token deleted.", visit), visit)
        default:
            throw LatticeError.notFound("console action '\(verb.prefix(40))'")
        }
    }

    func tokensPage(
        _ visit: Visit,
        _ request: Request?,
        _ principal: Principal,
        revealed: TokenWire? = nil,
        form: [String: String] = [:],
        error: LatticeError? = nil
    ) async throws -> Response {
        let tokens = try await api.tokens(principal: principal, page: PageRequest(page: 1, pageSize: 100)).nodes
        let view = ConsoleView.TokensPage(
            csrf: visit.csrf,
            revealed: revealed.flatMap { made in made.token.map { .init(name: made.name, secret: $0) } },
            tokens: tokens.map(ConsoleView.TokenRow.init),
            form: .init(name: form["name"] ?? "", validityDays: form["validityDays"] ?? "3650")
        )
        return show(visit, request, title: "API Credentials", page: "tokens", template: "tokens", view, error: error)
    }
}

extension ConsoleView {
    /// A token's secret, shown once.
    struct Revealed {
        var name: String
        var secret: String
    }

    struct TokenRow {
        var id: String
        var name: String
        var createdAt: String
        var expiresAt: String
        var lastUsedAt: String
        var regenerate: Button
        var delete: Button

        init(_ token: TokenWire) {
            id = token.id
            name = token.name
            createdAt = token.createdAt
            expiresAt = token.expiresAt
            lastUsedAt = token.lastUsedAt
            regenerate = Button(
                "Regenerate",
                action: "/console/tokens/\(token.id)/regenerate",
                confirm: "Regenerate '\(token.name)'? The old secret stops working at once."
            )
            delete = Button(
                "Delete",
                action: "/console/tokens/\(token.id)/delete",
                confirm: "Delete '\(token.name)'?",
                style: "danger"
            )
        }
    }

    /// `tokens.mustache`.
    struct TokensPage {
        struct Form {
            var name: String
            var validityDays: String
        }

        var csrf: String
        var revealed: Revealed?
        var tokens: [TokenRow]
        var form: Form
    }
}
