import Crypto
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
        console.get("static/:file") { request, context in
            try asset(request, named: try context.parameters.require("file"))
        }
        console.get("login") { request, _ in
            let visit = try await visit(request)
            // The login page shows only messages of its own, never text from the URL.
            let failed = request.uri.queryParameters.get("failed") == "1"
            return show(
                visit,
                nil,
                title: "Sign in",
                page: "login",
                template: "login",
                ConsoleView.LoginPage(csrf: visit.csrf, failed: failed)
            )
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
        registerInstances(console)
        registerInstance(console)
        registerTerminal(console)
        registerTokens(console)
        registerSSHKeys(console)
        registerActivity(console)
        registerBilling(console)
        registerAdmin(console)
        console.get("catalog") { request, _ in
            try await signedIn(request) { visit, _ in
                show(
                    visit,
                    request,
                    title: "GPU catalog",
                    page: "catalog",
                    template: "catalog",
                    try await catalogView()
                )
            }
        }
    }

    /// The GPU catalog page: every region's SKUs with prices, discounts and free GPUs.
    func catalogView() async throws -> ConsoleView.CatalogPage {
        let skus = try await api.gpuSkus(regionID: nil)
        return ConsoleView.CatalogPage(
            regions: api.catalog.regions.map { region in
                .init(
                    id: region.id,
                    name: region.name,
                    skus: skus.filter { $0.regionID == region.id }.map {
                        ConsoleView.SKURow($0, regionName: region.name)
                    }
                )
            }
        )
    }

    /// The stylesheet or the script; anything else is a 404.
    func asset(_ request: Request, named name: String) throws -> Response {
        guard let asset = ConsoleAssets.files[name] else {
            throw LatticeError.notFound("console file '\(name.prefix(40))'")
        }
        let etag = "\"\(ConsoleAssets.version)\""
        var headers: HTTPFields = [.contentType: asset.contentType, .eTag: etag]
        // Pages link the files with ?v=<version>, so such a link never changes its answer.
        headers[.cacheControl] =
            request.uri.queryParameters.get("v") == ConsoleAssets.version
            ? "public, max-age=31536000, immutable" : "no-cache"
        headers[HTTPField.Name("x-content-type-options")!] = "nosniff"
        if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: headers) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
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
            value: "\(name)=\(value); Path=/console; Max-Age=\(maxAge); HttpOnly; SameSite=Strict"
                + (visit.secure ? "; Secure" : "")
        )
    }

    /// Nothing inline and nothing from elsewhere: the pages' script and stylesheet are files
    /// of this server (`ConsoleAssets`), forms post only here, and no page may be framed.
    static let contentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"

    func decorate(_ response: inout Response, _ visit: Visit) {
        if visit.setCSRF { response.headers.append(cookie(Self.csrfCookie, visit.csrf, visit, maxAge: 86400)) }
        response.headers[.cacheControl] = "no-store"
        response.headers[HTTPField.Name("x-frame-options")!] = "DENY"
        response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        response.headers[HTTPField.Name("x-content-type-options")!] = "nosniff"
        response.headers[HTTPField.Name("referrer-policy")!] = "same-origin"
    }

    func redirect(_ location: String, _ visit: Visit) -> Response {
        var response = Response(status: .seeOther, headers: [.location: location])
        decorate(&response, visit)
        return response
    }

    /// A page: `template` rendered with `view`, in the layout. `request` is where a flash
    /// message comes from (nil: none), and only one this server signed for this visit
    /// (`flashed`) is shown, so a link cannot make a page say what its sender wants. An
    /// `error` is the answer to the form just posted, shown above the form it left filled in.
    func show(
        _ visit: Visit,
        _ request: Request?,
        title: String,
        page: String,
        template: String,
        _ view: Any,
        error: LatticeError? = nil,
        live: String? = nil
    ) -> Response {
        let isAdmin = visit.session?.isAdmin ?? false
        let layout = ConsoleView.Layout(
            title: title,
            page: page,
            live: live,
            events: live == ConsoleRoutes.ownLiveStatus ? "/console/events" : nil,
            namespace: visit.session?.namespace,
            isAdmin: isAdmin,
            nav: ConsoleView.nav(current: page, isAdmin: isAdmin),
            flash: request.flatMap { flash($0, visit) },
            error: error.map { "\($0.code): \($0.message)" },
            assetVersion: ConsoleAssets.version,
            csrf: visit.csrf,
            content: ConsoleTemplates.render(template, view)
        )
        let html = ConsoleTemplates.render("layout", layout)
        var response = Response(
            status: HTTPResponse.Status(code: error?.kind.status ?? 200),
            headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: html))
        )
        decorate(&response, visit)
        return response
    }

    /// `path` with a flash message for the page it leads to, signed for this visit.
    func flashed(_ path: String, _ message: String, _ visit: Visit) -> String {
        let separator = path.contains("?") ? "&" : "?"
        return path + separator + "flash=" + Self.queryEscape(message) + "&sig=" + Self.sign(message, visit)
    }

    /// The flash message of the URL, if this server signed it for this visit.
    func flash(_ request: Request, _ visit: Visit) -> String? {
        let query = request.uri.queryParameters
        guard let message = query.get("flash"), let sig = query.get("sig"),
            TokenSecrets.constantTimeEquals(sig, Self.sign(message, visit))
        else { return nil }
        return message
    }

    static func sign(_ message: String, _ visit: Visit) -> String {
        let key = SymmetricKey(data: Data(("lattice-console-flash:" + visit.csrf).utf8))
        return HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: key).prefix(16)
            .map { String(format: "%02x", $0) }.joined()
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

    /// `text` as one query value: everything but RFC 3986's unreserved characters escaped.
    static func queryEscape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    static let unreserved = CharacterSet(
        charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"
    )
}
