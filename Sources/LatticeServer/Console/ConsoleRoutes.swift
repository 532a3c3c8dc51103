import Foundation
import HTTPTypes
import Hummingbird
import LatticeDomain
import LatticeStore

/// The web console at `/console`: sign-in with namespace and token, API credentials,
/// instances and the GPU catalog, server-rendered with a little plain JavaScript. Every
/// action goes through `LatticeAPI` as the signed-in namespace, so tenancy is the API's.
struct ConsoleRoutes {
    let api: LatticeAPI
    let store: any Store
    let clock: any WallClock
    let sessions: ConsoleSessions
    let limits: RequestLimits

    static let sessionCookie = "lattice_session"
    static let csrfCookie = "lattice_csrf"

    struct Visit {
        var csrf: String
        var setCSRF: Bool
        var session: ConsoleSessions.Session?
        var sessionID: String?
        var secure: Bool
        var principal: Principal? {
            session.map { Principal(namespace: $0.namespace, tokenID: $0.tokenID, isAdmin: $0.isAdmin) }
        }
    }

    func register(on router: Router<LatticeRequestContext>) {
        let console = router.group("console")
        router.get("/console") { request, _ in
            let visit = try await visit(request)
            return redirect(visit.session == nil ? "/console/login" : "/console/instances", visit)
        }
        console.get("login") { request, _ in
            let visit = try await visit(request)
            // The login page shows only messages of its own, never text from the URL.
            let failed = request.uri.queryParameters.get("failed") == "1"
            return page(visit, title: "Sign in", body: loginForm(visit, failed: failed), request: nil)
        }
        console.post("login") { request, context in
            try limits.signIn.take(context.remoteAddress)
            let (visit, form) = try await checkedForm(request, context)
            return try await signIn(visit, form)
        }
        console.post("logout") { request, context in
            let (visit, _) = try await checkedForm(request, context)
            if let principal = visit.principal { context.trace.identify(principal) }
            if let id = visit.sessionID { try await sessions.end(id) }
            var response = redirect("/console/login", visit)
            response.headers.append(
                HTTPField(
                    name: .setCookie,
                    value: "\(Self.sessionCookie)=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict"
                )
            )
            return response
        }
        console.get("instances") { request, _ in
            try await signedIn(request) { visit, principal in
                page(
                    visit,
                    title: "Instances",
                    body: try await instancesPage(visit, principal),
                    request: request,
                    script: Self.instancesScript
                )
            }
        }
        console.get("instances.json") { request, _ in
            try await signedIn(request) { _, principal in
                try JSONResponse.encode(
                    try await allInstances(principal).map {
                        ["name": $0.name, "status": $0.status, "statusReason": $0.statusReason]
                    }
                )
            }
        }
        console.post("instances") { request, context in
            try await signedInForm(request, context) { visit, principal, form in
                try await createInstance(visit, principal, form)
            }
        }
        console.post("instances/:cluster/:name/:verb") { request, context in
            try await signedInForm(request, context) { visit, principal, form in
                try await instanceVerb(
                    visit,
                    principal,
                    form,
                    cluster: try context.parameters.require("cluster"),
                    name: try context.parameters.require("name"),
                    verb: try context.parameters.require("verb")
                )
            }
        }
        console.get("tokens") { request, _ in
            try await signedIn(request) { visit, principal in
                var revealed: TokenWire?
                if let id = visit.sessionID { revealed = try await sessions.takeRevealed(id) }
                return page(
                    visit,
                    title: "API Credentials",
                    body: try await tokensPage(visit, principal, newSecret: revealed),
                    request: request,
                    script: Self.copyScript
                )
            }
        }
        console.post("tokens") { request, context in
            try await signedInForm(request, context) { visit, principal, form in
                let days = (form["validityDays"]).flatMap { Int($0) }
                let body = JSONValue.object([
                    "name": .string(form["name"] ?? ""), "validityDays": days.map { .number(Double($0)) } ?? .null,
                ])
                do {
                    // Post, then redirect: a refresh shows the page again, it does not
                    // create another token. The secret is shown once, by that page.
                    let made = try await api.createToken(principal: principal, body: body)
                    if let id = visit.sessionID { try await sessions.reveal(made, in: id) }
                    return redirect("/console/tokens", visit)
                } catch let error as LatticeError {
                    return redirect("/console/tokens?error=" + Self.queryEscape(error.message), visit)
                }
            }
        }
        console.post("tokens/:id/:verb") { request, context in
            try await signedInForm(request, context) { visit, principal, _ in
                let id = try context.parameters.require("id")
                switch try context.parameters.require("verb") {
                case "regenerate":
                    let made = try await api.regenerateToken(principal: principal, id: id)
                    if let session = visit.sessionID, made.id != visit.session?.tokenID {
                        try await sessions.reveal(made, in: session)
                    }
                    // Regenerating the session's own token ends the session (its secret is
                    // gone); the new secret is shown once here instead.
                    if made.id == visit.session?.tokenID {
                        return page(
                            visit,
                            title: "API Credentials",
                            body: Self.regeneratedOwnToken(made),
                            request: request
                        )
                    }
                    return redirect("/console/tokens", visit)
                case "delete":
                    try await api.deleteToken(principal: principal, id: id)
                    return redirect("/console/tokens?flash=" + Self.queryEscape("Token deleted."), visit)
                default:
                    throw LatticeError.notFound("console action")
                }
            }
        }
        registerSSHKeys(console)
        registerActivity(console)
        registerBilling(console)
        console.get("catalog") { request, _ in
            try await signedIn(request) { visit, _ in
                page(visit, title: "GPU catalog", body: try await catalogPage(), request: request)
            }
        }
    }

    // MARK: Sessions, cookies and CSRF

    func visit(_ request: Request) async throws -> Visit {
        let cookies = request.cookies
        let existing = cookies[Self.csrfCookie]?.value
        var visit = Visit(
            csrf: existing ?? ConsoleSessions.randomToken(),
            setCSRF: existing == nil,
            session: nil,
            sessionID: nil,
            secure: request.headers[HTTPField.Name("x-forwarded-proto")!] == "https"
        )
        let now = clock.now()
        if let id = cookies[Self.sessionCookie]?.value, let session = try await sessions.lookup(id, now: now) {
            // A session ends with the token it was opened with: regenerated (new hash),
            // deleted or expired.
            if let token = try await store.token(secretHash: session.tokenHash), token.id == session.tokenID,
                token.expiresAt > now
            {
                visit.session = session
                visit.sessionID = id
                // Forms of a signed-in page carry the session's own CSRF token.
                visit.csrf = session.csrf
            } else {
                try await sessions.end(id)
            }
        }
        return visit
    }

    func cookie(_ name: String, _ value: String, _ visit: Visit, maxAge: Int) -> HTTPField {
        HTTPField(
            name: .setCookie,
            value:
                "\(name)=\(value); Path=/console; Max-Age=\(maxAge); HttpOnly; SameSite=Strict\(visit.secure ? "; Secure" : "")"
        )
    }

    func decorate(_ response: inout Response, _ visit: Visit) {
        if visit.setCSRF { response.headers.append(cookie(Self.csrfCookie, visit.csrf, visit, maxAge: 86400)) }
        response.headers[.cacheControl] = "no-store"
        response.headers[HTTPField.Name("x-frame-options")!] = "DENY"
        response.headers[.contentSecurityPolicy] =
            "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'"
    }

    func redirect(_ location: String, _ visit: Visit) -> Response {
        var response = Response(status: .seeOther, headers: [.location: location])
        decorate(&response, visit)
        return response
    }

    /// A page; `request` is where its flash and error messages come from (nil: none).
    func page(_ visit: Visit, title: String, body: String, request: Request?, script: String = "") -> Response {
        let query = request?.uri.queryParameters ?? [:]
        let html = HTML.page(
            title: title,
            namespace: visit.session?.namespace,
            csrf: visit.csrf,
            flash: query.get("flash"),
            error: query.get("error"),
            body: body,
            script: script
        )
        var response = Response(
            status: .ok,
            headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: html))
        )
        decorate(&response, visit)
        return response
    }

    /// Reads a form and rejects it unless it comes from this server's own pages: `Origin`
    /// (or, without it, `Referer`) must be this server, and the `csrf` field must be the
    /// session's CSRF token (before sign-in: the CSRF cookie's).
    func checkedForm(_ request: Request, _ context: LatticeRequestContext) async throws -> (Visit, [String: String]) {
        try checkOrigin(request)
        let visit = try await visit(request)
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let form = FormBody.parse(Data(buffer.readableBytesView))
        // Double submit as well: the CSRF cookie (rotated to the session's token at sign-in)
        // must match too.
        let cookie = request.cookies[Self.csrfCookie]?.value
        let expected = visit.session?.csrf ?? cookie
        guard let expected, let cookie, TokenSecrets.constantTimeEquals(cookie, expected), let sent = form["csrf"],
            TokenSecrets.constantTimeEquals(sent, expected)
        else {
            throw LatticeError.forbidden("the form's CSRF token is missing or wrong; reload the page and try again")
        }
        return (visit, form)
    }

    /// A form post must come from a page of this server: its `Origin` (sent by every
    /// current browser on a POST), or if absent its `Referer`, must name this host.
    func checkOrigin(_ request: Request) throws {
        guard let host = request.head.authority else { return }
        let scheme = request.headers[HTTPField.Name("x-forwarded-proto")!] == "https" ? "https" : "http"
        let own = "\(scheme)://\(host)"
        if let origin = request.headers[.origin] {
            guard origin == own else {
                throw LatticeError.forbidden(
                    "form posted from another origin (\(origin.prefix(100))); use this console's own pages"
                )
            }
        } else if let referer = request.headers[.referer] {
            guard referer == own || referer.hasPrefix(own + "/") else {
                throw LatticeError.forbidden("form posted from another site; use this console's own pages")
            }
        }
    }

    func signedIn(_ request: Request, _ body: (Visit, Principal) async throws -> Response) async throws -> Response {
        let visit = try await visit(request)
        guard let principal = visit.principal else { return redirect("/console/login", visit) }
        return try await body(visit, principal)
    }

    func signedInForm(
        _ request: Request,
        _ context: LatticeRequestContext,
        _ body: (Visit, Principal, [String: String]) async throws -> Response
    ) async throws -> Response {
        let (visit, form) = try await checkedForm(request, context)
        guard let principal = visit.principal else { return redirect("/console/login", visit) }
        context.trace.identify(principal)
        return try await body(visit, principal, form)
    }

    func signIn(_ visit: Visit, _ form: [String: String]) async throws -> Response {
        let secret = (form["token"] ?? "").trimmingCharacters(in: .whitespaces)
        let claimed = (form["namespace"] ?? "").trimmingCharacters(in: .whitespaces)
        let failure = redirect("/console/login?failed=1", visit)
        guard !secret.isEmpty, let token = try await store.token(secretHash: TokenSecrets.hash(secret)),
            token.expiresAt > clock.now(), claimed.isEmpty || claimed == token.namespace
        else { return failure }
        let user = try await store.user(namespace: token.namespace)
        let csrf = ConsoleSessions.randomToken()
        let id = try await sessions.create(
            .init(
                namespace: token.namespace,
                tokenID: token.id,
                tokenHash: token.secretHash,
                isAdmin: user?.isAdmin ?? false,
                expiresAt: clock.now().addingTimeInterval(ConsoleSessions.lifetime),
                csrf: csrf
            ),
            now: clock.now()
        )
        var response = redirect("/console/instances", visit)
        response.headers.append(cookie(Self.sessionCookie, id, visit, maxAge: Int(ConsoleSessions.lifetime)))
        // The CSRF token is the session's from now on; the cookie follows it.
        response.headers.append(cookie(Self.csrfCookie, csrf, visit, maxAge: Int(ConsoleSessions.lifetime)))
        return response
    }

    static func queryEscape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
    }

    // MARK: Pages

    func loginForm(_ visit: Visit, failed: Bool = false) -> String {
        let failure =
            failed
            ? #"<p class="error" role="alert">Sign-in failed: unknown, expired or revoked token, "#
                + "or another namespace's.</p>" : ""
        return """
            \(failure)<form method="post" action="/console/login" class="card">
              \(HTML.csrfField(visit.csrf))
              <label for="namespace">Namespace</label>
              <input id="namespace" name="namespace" autocomplete="username" required>
              <label for="token">API token</label>
              <input id="token" name="token" type="password" autocomplete="current-password" required>
              <p><button type="submit" class="primary" id="sign-in">Sign in</button></p>
            </form>
            """
    }

    func allInstances(_ principal: Principal) async throws -> [InstanceWire] {
        var all: [InstanceWire] = []
        for cluster in api.catalog.clusters {
            all += try await api.instances(
                principal: principal,
                cluster: cluster.name,
                page: PageRequest(page: 1, pageSize: 100)
            ).nodes
        }
        return all
    }

    func instancesPage(_ visit: Visit, _ principal: Principal) async throws -> String {
        let instances = try await allInstances(principal)
        let rows = instances.map { i -> String in
            let base = "/console/instances/\(HTML.escape(i.Region))/\(HTML.escape(i.name))"
            let price = i.annotations.first { $0.key.hasSuffix("/unit-price") }?.value ?? ""
            // Every action is rendered; the script shows the ones that fit the live status.
            func when(_ statuses: String, _ form: String) -> String {
                let hidden = statuses.split(separator: " ").contains(Substring(i.status)) ? "" : " hidden"
                return #"<div data-when="\#(statuses)" data-for="\#(HTML.escape(i.name))"\#(hidden)>\#(form)</div>"#
            }
            let actions =
                when(
                    "Running",
                    """
                    <form method="post" action="\(base)/power_off" class="inline-fields">\(HTML.csrfField(visit.csrf))
                      <label class="inline-fields"><input type="checkbox" name="needSnapshot" value="true"> Save image</label>
                      <input name="imageName" aria-label="Image name for \(HTML.escape(i.name))" placeholder="image name">
                      <input name="tag" aria-label="Image tag for \(HTML.escape(i.name))" placeholder="tag">
                      <button type="submit" data-action="power_off">Power off</button></form>
                    """
                )
                + when("Stopped Failed", HTML.button("Power on", action: "\(base)/power_on", csrf: visit.csrf))
                + when(
                    "Creating Starting Running Stopping Saving Stopped Failed",
                    HTML.button(
                        "Delete",
                        action: "\(base)/delete",
                        csrf: visit.csrf,
                        confirm: "Delete \(i.name) and its data disk?",
                        style: "danger"
                    )
                )
            return """
                <tr data-name="\(HTML.escape(i.name))">
                  <td><strong>\(HTML.escape(i.displayName))</strong><br><code>\(HTML.escape(i.name))</code></td>
                  <td><span class="status status-\(HTML.escape(i.status))" data-status-for="\(HTML.escape(i.name))">\(HTML.escape(i.status))</span>
                      <br><small data-reason-for="\(HTML.escape(i.name))">\(HTML.escape(i.statusReason))</small></td>
                  <td>\(HTML.escape(i.resources.GPUNum))×\(HTML.escape(i.resources.GPUType))</td>
                  <td class="optional">\(HTML.escape(price))</td>
                  <td class="optional"><code>\(HTML.escape(i.servers.SSH.sshAddr))</code></td>
                  <td class="optional"><a href="\(HTML.escape(i.servers.Jupyterlab))">Jupyter</a></td>
                  <td class="actions">\(actions)</td>
                </tr>
                """
        }.joined()
        let table =
            instances.isEmpty
            ? "<p>No instances yet.</p>"
            : """
            <div class="table-wrap"><table>
              <thead><tr><th scope="col">Instance</th><th scope="col">Status</th><th scope="col">GPU</th><th scope="col" class="optional">Price</th>
              <th scope="col" class="optional">SSH</th><th scope="col" class="optional">Jupyter</th><th scope="col">Actions</th></tr></thead>
              <tbody>\(rows)</tbody></table></div>
            """
        return table + (try await createForm(visit, principal))
    }

    func createForm(_ visit: Visit, _ principal: Principal) async throws -> String {
        let regions = api.catalog.regions
        let skus = try await api.gpuSkus(regionID: nil)
        let images = try await api.images(principal: principal, page: PageRequest(page: 1, pageSize: 100)).nodes.filter
        { $0.status == "Ready" }
        let regionOptions = regions.map { region -> String in
            #"<option value="\#(HTML.escape(region.id))">\#(HTML.escape(region.name))</option>"#
        }.joined()
        let unit = ["1": "/h", "2": "/month", "3": "/week", "4": "/day"]
        let skuOptions = skus.map { sku -> String in
            #"<option value="\#(HTML.escape(sku.skusID))" data-region="\#(HTML.escape(sku.regionID))" data-price="\#(HTML.escape(sku.effectivePrice))" data-unit="\#(unit[sku.sellingType] ?? "")" data-selling="\#(HTML.escape(sku.sellingType))">\#(HTML.escape(sku.gpuProduct)) ×\#(sku.gpuCounts) · \#(HTML.escape(sku.effectivePrice))\#(unit[sku.sellingType] ?? "") · \#(sku.remainGPUCount) GPUs free</option>"#
        }.joined()
        let imageOptions = images.map { image -> String in
            #"<option value="\#(HTML.escape(image.name))">\#(HTML.escape(image.name))</option>"#
        }.joined()
        return """
            <section class="card" aria-labelledby="create-heading">
              <h2 id="create-heading">Create an instance</h2>
              <form method="post" action="/console/instances" id="create-form">
                \(HTML.csrfField(visit.csrf))
                <label for="region">Region</label><select id="region" name="region">\(regionOptions)</select>
                <label for="sku">GPU</label><select id="sku" name="sku">\(skuOptions)</select>
                <label for="costTime">Prepaid term (for monthly, weekly or daily SKUs: 1M, 2W, 3D)</label><input id="costTime" name="costTime" placeholder="leave empty for pay-as-you-go">
                <label for="image">Image</label><select id="image" name="image">\(imageOptions)</select>
                <label for="size">Data disk (GB)</label><input id="size" name="size" type="number" min="1" max="2048" value="50">
                <label for="displayName">Name</label><input id="displayName" name="displayName" required maxlength="128">
                <p>Price: <output id="price" for="sku" aria-live="polite"></output></p>
                <p><button type="submit" class="primary" id="create">Create</button></p>
              </form>
            </section>
            """
    }

    func createInstance(_ visit: Visit, _ principal: Principal, _ form: [String: String]) async throws -> Response {
        let skuID = form["sku"] ?? ""
        guard let sku = api.catalog.gpuSku(id: skuID) else {
            return redirect("/console/instances?error=" + Self.queryEscape("Choose a GPU."), visit)
        }
        let body = JSONValue.object([
            "Cost": .object([
                "CostType": .string(String(sku.sellingType)),
                "DiskSKUID": .string(api.catalog.diskSkus.first?.id ?? "1"),
                "GPUSKUID": .string(sku.id), "CostTime": .string(form["costTime"] ?? ""),
            ]),
            "VolumeMount": .array([.object(["Size": .string(form["size"] ?? "")])]),
            "namespace": .string(principal.namespace),
            "displayName": .string(form["displayName"] ?? ""),
            "image": .string(form["image"] ?? ""),
            "Region": .string(form["region"] ?? ""),
        ])
        do {
            let created = try await api.createInstance(principal: principal, cluster: sku.clusterName, body: body)
            return redirect("/console/instances?flash=" + Self.queryEscape("Creating \(created.name)."), visit)
        } catch let error as LatticeError {
            return redirect("/console/instances?error=" + Self.queryEscape("\(error.code): \(error.message)"), visit)
        }
    }

    func instanceVerb(
        _ visit: Visit,
        _ principal: Principal,
        _ form: [String: String],
        cluster: String,
        name: String,
        verb: String
    ) async throws -> Response {
        do {
            switch verb {
            case "power_off":
                var body: [String: JSONValue] = ["needSnapshot": .string(form["needSnapshot"] ?? "")]
                if form["needSnapshot"] == "true" {
                    body["imageName"] = .string(form["imageName"] ?? "")
                    body["tag"] = .string(form["tag"] ?? "")
                }
                try await api.powerOff(principal: principal, cluster: cluster, name: name, body: .object(body))
            case "power_on":
                try await api.powerOn(principal: principal, cluster: cluster, name: name)
            case "delete":
                try await api.delete(principal: principal, cluster: cluster, name: name)
            default:
                throw LatticeError.notFound("console action '\(verb)'")
            }
            return redirect(
                "/console/instances?flash="
                    + Self.queryEscape("\(name): \(verb.replacingOccurrences(of: "_", with: " ")) requested."),
                visit
            )
        } catch let error as LatticeError {
            return redirect("/console/instances?error=" + Self.queryEscape("\(error.code): \(error.message)"), visit)
        }
    }

    /// After regenerating the token this session signed in with: the session has ended with
    /// the old secret, so the page shows the new one once and offers to sign in with it.
    static func regeneratedOwnToken(_ made: TokenWire) -> String {
        """
        <section class="card" aria-labelledby="new-token-heading">
          <h2 id="new-token-heading">Token “\(HTML.escape(made.name))”</h2>
          <p>You regenerated the token you signed in with, so this session has ended. Copy the
          new secret now (it is shown only once) and <a href="/console/login">sign in</a> with it.</p>
          <label for="new-token">Token</label>
          <input id="new-token" class="secret" readonly value="\(HTML.escape(made.token ?? ""))">
        </section>
        """
    }

    func tokensPage(_ visit: Visit, _ principal: Principal, newSecret: TokenWire?) async throws -> String {
        let tokens = try await api.tokens(principal: principal, page: PageRequest(page: 1, pageSize: 100)).nodes
        var html = ""
        if let newSecret, let secret = newSecret.token {
            html += """
                <section class="card" aria-labelledby="new-token-heading">
                  <h2 id="new-token-heading">Token “\(HTML.escape(newSecret.name))”</h2>
                  <p>Copy it now: it is shown only once.</p>
                  <label for="new-token">Token</label>
                  <input id="new-token" class="secret" readonly value="\(HTML.escape(secret))">
                  <p><button type="button" id="copy-token" data-copy="new-token">Copy</button> <span id="copy-result" role="status"></span></p>
                </section>
                """
        }
        let rows = tokens.map { token -> String in
            """
            <tr data-token="\(HTML.escape(token.id))"><td>\(HTML.escape(token.name))</td><td class="optional">\(HTML.escape(token.createdAt))</td>
            <td>\(HTML.escape(token.expiresAt))</td><td class="optional">\(HTML.escape(token.lastUsedAt))</td>
            <td>\(HTML.button("Regenerate", action: "/console/tokens/\(token.id)/regenerate", csrf: visit.csrf, confirm: "Regenerate '\(token.name)'? The old secret stops working at once."))
            \(HTML.button("Delete", action: "/console/tokens/\(token.id)/delete", csrf: visit.csrf, confirm: "Delete '\(token.name)'?", style: "danger"))</td></tr>
            """
        }.joined()
        html += """
            <div class="table-wrap"><table>
              <thead><tr><th scope="col">Name</th><th scope="col" class="optional">Created</th><th scope="col">Expires</th><th scope="col" class="optional">Last used</th><th scope="col">Actions</th></tr></thead>
              <tbody>\(rows)</tbody></table></div>
            <section class="card" aria-labelledby="add-heading">
              <h2 id="add-heading">Add Token</h2>
              <form method="post" action="/console/tokens">
                \(HTML.csrfField(visit.csrf))
                <label for="token-name">Name</label><input id="token-name" name="name" required maxlength="64">
                <label for="validity">Validity (days)</label><input id="validity" name="validityDays" type="number" min="1" max="36500" value="3650">
                <p><button type="submit" class="primary" id="add-token">OK</button></p>
              </form>
            </section>
            """
        return html
    }

    func catalogPage() async throws -> String {
        let skus = try await api.gpuSkus(regionID: nil)
        let selling = ["1": "pay-as-you-go (per hour)", "2": "monthly", "3": "weekly", "4": "daily"]
        return api.catalog.regions.map { region -> String in
            let rows = skus.filter { $0.regionID == region.id }.map { sku -> String in
                let discount =
                    sku.discountID.isEmpty
                    ? "—" : "×\(sku.ratio) \(HTML.escape(sku.discountStartTime)) – \(HTML.escape(sku.discountEndTime))"
                return """
                    <tr><td>\(HTML.escape(sku.skusID))</td><td>\(HTML.escape(sku.gpuProduct)) ×\(sku.gpuCounts)</td><td class="optional">\(sku.cpucores) CPU · \(sku.memoryCount) GiB</td>
                    <td>\(HTML.escape(selling[sku.sellingType] ?? sku.sellingType))</td><td>\(HTML.escape(Money(String(sku.price))?.description ?? String(sku.price)))</td>
                    <td class="optional">\(discount)</td><td>\(HTML.escape(sku.effectivePrice))</td><td>\(sku.remainGPUCount)</td></tr>
                    """
            }.joined()
            return """
                <section aria-labelledby="region-\(HTML.escape(region.id))"><h2 id="region-\(HTML.escape(region.id))">\(HTML.escape(region.name))</h2>
                <div class="table-wrap"><table><thead><tr><th scope="col">SKU</th><th scope="col">GPU</th><th scope="col" class="optional">Machine</th><th scope="col">Billing</th>
                <th scope="col">Price</th><th scope="col" class="optional">Discount</th><th scope="col">Now</th><th scope="col">Free GPUs</th></tr></thead>
                <tbody>\(rows)</tbody></table></div></section>
                """
        }.joined()
    }

    // MARK: Scripts

    static let instancesScript = """
        (function(){
          var region=document.getElementById('region'),sku=document.getElementById('sku'),price=document.getElementById('price');
          function filter(){if(!sku)return;var first=null;for(var i=0;i<sku.options.length;i++){var o=sku.options[i];var visible=o.dataset.region===region.value;o.hidden=!visible;o.disabled=!visible;if(visible&&!first)first=o;}
            if(sku.selectedOptions.length===0||sku.selectedOptions[0].disabled){if(first)sku.value=first.value;}show();}
          function show(){var o=sku&&sku.selectedOptions[0];if(price)price.textContent=o?(o.dataset.price+o.dataset.unit):'';}
          if(region){region.addEventListener('change',filter);sku.addEventListener('change',show);filter();}
          function refresh(){fetch('/console/instances.json',{credentials:'same-origin'}).then(function(r){return r.ok?r.json():[];}).then(function(list){
            var seen={};list.forEach(function(i){seen[i.name]=1;var s=document.querySelector('[data-status-for="'+i.name+'"]');
              if(s&&s.textContent!==i.status){s.textContent=i.status;s.className='status status-'+i.status;var r=document.querySelector('[data-reason-for="'+i.name+'"]');if(r)r.textContent=i.statusReason;
                document.querySelectorAll('[data-for="'+i.name+'"]').forEach(function(a){a.hidden=a.dataset.when.split(' ').indexOf(i.status)<0;});}});
            document.querySelectorAll('[data-status-for]').forEach(function(s){if(!seen[s.dataset.statusFor]){s.textContent='Deleted';s.className='status';
              document.querySelectorAll('[data-for="'+s.dataset.statusFor+'"]').forEach(function(a){a.hidden=true;});}});
          }).catch(function(){});}
          setInterval(refresh,1500);
        })();
        """

    static let copyScript = """
        document.querySelectorAll('[data-copy]').forEach(function(b){b.addEventListener('click',function(){
          var input=document.getElementById(b.dataset.copy),out=document.getElementById('copy-result');
          function done(){if(out)out.textContent='Copied.';}
          if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(input.value).then(done,function(){input.select();document.execCommand('copy');done();});}
          else{input.select();document.execCommand('copy');done();}
        });});
        """
}
