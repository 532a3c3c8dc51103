import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LatticeDomain
import Testing

@testable import LatticeServer

/// The console's pages as templates render them (every page, escaping, the CSP without
/// inline code), its admin pages and their forms, and signed flash messages.
@Suite(.timeLimit(.minutes(10))) struct ConsoleTests {
    struct Session: Sendable {
        var csrf: String
        var cookies: HTTPFields
    }

    static func signIn(_ client: any TestClientProtocol, _ namespace: String, _ token: String) async throws -> Session {
        let csrf = try await client.execute(uri: "/console/login", method: .get) { response in
            let cookie = response.headers[values: .setCookie].first { $0.hasPrefix("lattice_csrf=") } ?? ""
            return String(cookie.dropFirst("lattice_csrf=".count).prefix { $0 != ";" })
        }
        return try await client.execute(
            uri: "/console/login",
            method: .post,
            headers: [.contentType: "application/x-www-form-urlencoded", .cookie: "lattice_csrf=\(csrf)"],
            body: ByteBuffer(string: "csrf=\(csrf)&namespace=\(namespace)&token=\(token)")
        ) { response in
            #expect(response.status == .seeOther)
            let cookies = response.headers[values: .setCookie].map { String($0.prefix { $0 != ";" }) }
            let session = cookies.first { $0.hasPrefix("lattice_csrf=") } ?? ""
            return Session(
                csrf: String(session.dropFirst("lattice_csrf=".count)),
                cookies: [.cookie: cookies.joined(separator: "; ")]
            )
        }
    }

    static func page(
        _ client: any TestClientProtocol,
        _ path: String,
        _ session: Session
    ) async throws -> (
        HTTPResponse.Status, String
    ) {
        try await client.execute(uri: path, method: .get, headers: session.cookies) { response in
            (response.status, String(buffer: response.body))
        }
    }

    static func post(
        _ client: any TestClientProtocol,
        _ path: String,
        _ session: Session,
        _ fields: [String: String]
    ) async throws -> (HTTPResponse.Status, String, String) {
        var headers = session.cookies
        headers[.contentType] = "application/x-www-form-urlencoded"
        let body = (fields.merging(["csrf": session.csrf]) { first, _ in first }).map {
            "\($0.key)=\(ConsoleRoutes.queryEscape($0.value))"
        }.joined(separator: "&")
        return try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body)) {
            ($0.status, String(buffer: $0.body), $0.headers[.location] ?? "")
        }
    }

    static func newTenant(_ client: any TestClientProtocol, _ namespace: String) async throws -> String {
        try await client.execute(
            uri: "/mdc/api/v1/admin/users",
            method: .post,
            headers: headers(),
            body: json(["namespace": namespace, "balance": "100"])
        ) { response in
            #expect(response.status == .ok)
            return (decode(response.body) as? [String: Any])?["token"] as? String ?? ""
        }
    }

    static func balance(_ client: any TestClientProtocol, _ namespace: String) async throws -> String {
        try await client.execute(uri: "/mdc/api/v1/admin/users?pageSize=100", method: .get, headers: headers()) {
            let users = (decode($0.body) as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
            return users.first { $0["namespace"] as? String == namespace }?["balance"] as? String ?? ""
        }
    }

    @Test func everyPageRendersItsTemplateEscapedUnderACSPWithoutInlineCode() async throws {
        let server = try await TestServer()
        try await server.test { client in
            var hostile = createBody
            hostile["displayName"] = "<script>alert(1)</script>"
            try await client.execute(
                uri: "/mdc/api/v1/clusters/host-cluster/instances",
                method: .post,
                headers: headers(),
                body: json(hostile)
            ) { #expect($0.status == .ok) }
        }
        await server.reconcile(passes: 4)
        try await server.test { client in
            let admin = try await Self.signIn(client, "admin", TestServer.adminToken)
            let pages =
                ConsoleView.tenantPages.map(\.page) + ConsoleView.adminPages.map(\.page)
                + ["admin/prices?sku=66", "admin/tenants?namespace=admin"]
            for page in pages {
                try await client.execute(uri: "/console/" + page, method: .get, headers: admin.cookies) { response in
                    let html = String(buffer: response.body)
                    #expect(response.status == .ok, "\(page)")
                    #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                    #expect(response.headers[.contentSecurityPolicy] == ConsoleRoutes.contentSecurityPolicy)
                    #expect(!ConsoleRoutes.contentSecurityPolicy.contains("unsafe-inline"))
                    #expect(!html.contains("{{"), "\(page): a tag left unrendered")
                    #expect(!html.contains("<script>alert"), "\(page): a display name rendered as HTML")
                    #expect(!html.contains("<script>") && !html.contains("style="), "\(page): inline code")
                    #expect(html.contains(#"aria-current="page""#), "\(page): the nav marks the page")
                    #expect(html.contains(#"name="csrf" value="\#(admin.csrf)""#), "\(page): forms carry the CSRF")
                }
            }
            let (_, instances) = try await Self.page(client, "/console/instances", admin)
            #expect(instances.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            let (_, all) = try await Self.page(client, "/console/admin/instances", admin)
            #expect(all.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(all.contains("gpu-4090-0"), "an admin sees the node")
        }
    }

    @Test func theLoginFormCarriesTheCSRFCookiesTokenAndNoTextFromTheURL() async throws {
        let server = try await TestServer()
        try await server.test { client in
            try await client.execute(uri: "/console/login?failed=1&flash=Call+us&error=scam", method: .get) {
                response in
                let cookie = response.headers[values: .setCookie].first { $0.hasPrefix("lattice_csrf=") } ?? ""
                let csrf = String(cookie.dropFirst("lattice_csrf=".count).prefix { $0 != ";" })
                let html = String(buffer: response.body)
                #expect(!csrf.isEmpty && html.contains(#"name="csrf" value="\#(csrf)""#))
                #expect(html.contains("Sign-in failed") && !html.contains("Call us") && !html.contains("scam"))
            }
        }
    }

    @Test func aTenantsSessionGetsA403PageForAdminPagesAndNoAdminNav() async throws {
        let server = try await TestServer()
        try await server.test { client in
            let token = try await Self.newTenant(client, "tenant-a")
            let tenant = try await Self.signIn(client, "tenant-a", token)
            for page in ConsoleView.adminPages.map(\.page) {
                let (status, html) = try await Self.page(client, "/console/" + page, tenant)
                #expect(status == .forbidden, "\(page)")
                #expect(html.contains(#"role="alert""#))
            }
            let (status, _, _) = try await Self.post(
                client,
                "/console/admin/wallet/credit",
                tenant,
                ["namespace": "tenant-a", "amount": "1000"]
            )
            #expect(status == .forbidden)
            #expect(try await Self.balance(client, "tenant-a") == "100.00")
            let (_, own) = try await Self.page(client, "/console/instances", tenant)
            #expect(!own.contains("/console/admin/"))
        }
    }

    @Test func anAdminCreditsAndDebitsThroughTheConsoleAndBadAmountsChangeNothing() async throws {
        let server = try await TestServer()
        try await server.test { client in
            _ = try await Self.newTenant(client, "tenant-b")
            let admin = try await Self.signIn(client, "admin", TestServer.adminToken)
            let (status, _, location) = try await Self.post(
                client,
                "/console/admin/wallet/credit",
                admin,
                ["namespace": "tenant-b", "amount": "12.50", "reason": "退款 for the outage"]
            )
            #expect(status == .seeOther)
            #expect(location.hasPrefix("/console/admin/tenants?namespace=tenant-b&flash="))
            #expect(try await Self.balance(client, "tenant-b") == "112.50")
            let (_, landed) = try await Self.page(client, location, admin)
            #expect(landed.contains("Credited 12.50 CNY to tenant-b; the balance is 112.50 CNY."))
            for (verb, amount, reason) in [
                ("credit", "-5", ""), ("credit", "lots", ""), ("credit", "1e30", ""), ("debit", "5", ""),
                ("debit", "100000", "too much"),
            ] {
                let (refused, html, _) = try await Self.post(
                    client,
                    "/console/admin/wallet/\(verb)",
                    admin,
                    ["namespace": "tenant-b", "amount": amount, "reason": reason]
                )
                #expect((400..<500).contains(refused.code), "\(verb) \(amount)")
                #expect(html.contains(#"role="alert""#))
                #expect(html.contains(#"value="\#(amount)""#), "the form keeps what was typed")
            }
            #expect(try await Self.balance(client, "tenant-b") == "112.50")
            let (unknown, _, _) = try await Self.post(
                client,
                "/console/admin/wallet/credit",
                admin,
                ["namespace": "nobody", "amount": "1"]
            )
            #expect(unknown == .notFound)
            let (debited, _, _) = try await Self.post(
                client,
                "/console/admin/wallet/debit",
                admin,
                ["namespace": "tenant-b", "amount": "2.50", "reason": "GPU hours billed twice"]
            )
            #expect(debited == .seeOther)
            #expect(try await Self.balance(client, "tenant-b") == "110.00")
            let (quota, _, _) = try await Self.post(
                client,
                "/console/admin/quota",
                admin,
                ["namespace": "tenant-b", "instances": "3", "gpus": ""]
            )
            #expect(quota == .seeOther)
            let (_, manage) = try await Self.page(client, "/console/admin/tenants?namespace=tenant-b", admin)
            #expect(manage.contains(#"name="instances" inputmode="numeric" value="3""#))
            let (badQuota, _, _) = try await Self.post(
                client,
                "/console/admin/quota",
                admin,
                ["namespace": "tenant-b", "instances": "many"]
            )
            #expect((400..<500).contains(badQuota.code))
        }
    }

    @Test func aRefusedCreateKeepsTheFormAndAStoppedInstanceHidesItsLinks() async throws {
        let server = try await TestServer()
        try await server.test { client in
            let admin = try await Self.signIn(client, "admin", TestServer.adminToken)
            let (status, html, _) = try await Self.post(
                client,
                "/console/instances",
                admin,
                [
                    "region": Catalog.builtInRegionID, "sku": "66", "size": "99999", "displayName": "训练-kept",
                    "costTime": "",
                ]
            )
            #expect((400..<500).contains(status.code))
            #expect(html.contains(#"role="alert""#))
            #expect(html.contains(#"value="训练-kept""#))
            #expect(html.contains(#"value="99999""#))
            #expect(html.contains(#"<option value="66" data-region="#))
            let (flashStatus, _, created) = try await Self.post(
                client,
                "/console/instances",
                admin,
                [
                    "region": Catalog.builtInRegionID, "sku": "66", "size": "50", "displayName": "box",
                    "image": Self.image,
                ]
            )
            #expect(flashStatus == .seeOther)
            let (_, landed) = try await Self.page(client, created, admin)
            #expect(landed.contains(#"class="flash""#), "a flash this server signed is shown")
            let forged = created.replacingOccurrences(of: "Creating", with: "Pwned")
            let (_, forgedPage) = try await Self.page(client, forged, admin)
            #expect(!forgedPage.contains("Pwned") && !forgedPage.contains(#"class="flash""#))
            let (_, unsigned) = try await Self.page(client, "/console/instances?flash=Your+account+is+closed", admin)
            #expect(!unsigned.contains("account is closed"))
        }
        await server.reconcile(passes: 4)
        try await server.test { client in
            let admin = try await Self.signIn(client, "admin", TestServer.adminToken)
            let (_, running) = try await Self.page(client, "/console/instances", admin)
            #expect(
                running.range(of: #"<code data-when="Running" data-for="[a-z0-9-]+">"#, options: .regularExpression)
                    != nil
            )
        }
        let name = try await server.store.instances(
            namespace: "admin",
            cluster: "host-cluster",
            page: PageRequest(page: 1, pageSize: 10)
        ).items[0].name
        try await server.test { client in
            let admin = try await Self.signIn(client, "admin", TestServer.adminToken)
            let (status, _, _) = try await Self.post(
                client,
                "/console/instances/host-cluster/\(name)/power_off",
                admin,
                ["needSnapshot": ""]
            )
            #expect(status == .seeOther)
        }
        await server.reconcile(passes: 5)
        try await server.test { client in
            let admin = try await Self.signIn(client, "admin", TestServer.adminToken)
            let (_, stopped) = try await Self.page(client, "/console/instances", admin)
            #expect(stopped.contains(#"<code data-when="Running" data-for="\#(name)" hidden>"#))
            #expect(stopped.contains(#"<a data-when="Running" data-for="\#(name)" hidden"#))
            let (missing, page, _) = try await Self.post(
                client,
                "/console/instances/host-cluster/nothing-here/power_on",
                admin,
                [:]
            )
            #expect(missing == .notFound)
            #expect(page.contains(#"role="alert""#) && page.contains("NotFound"))
        }
    }

    static let image = createBody["image"] as! String
}
