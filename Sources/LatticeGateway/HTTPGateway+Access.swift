import Foundation

/// Who may pass the HTTP gateway: the instance's token (Jupyter's) in a query, a cookie or
/// an `Authorization` header, for JupyterLab, Tensorboard and the ports it does not publish
/// as public (docs/access.md).
extension HTTPGatewayHandler {
    /// The cookie that carries the instance's token to Tensorboard's own requests.
    static let monitorCookie = "lattice_monitor"
    /// The same for JupyterLab's requests (Jupyter checks the token itself too).
    static let jupyterCookie = "lattice_jupyter"
    /// The same for a published port (a cookie of that host name only).
    static let portCookie = "lattice_port"

    /// What the gateway asks for the instance's token (Jupyter's), the applications behind
    /// it having no sign-in of their own (Tensorboard, a tenant's port): `?token=` on the
    /// link, then a cookie for the page's own requests; API clients may send
    /// `Authorization: token <t>` (or `Bearer <t>`).
    enum TokenAccess: Equatable {
        case allowed
        /// The token came in the query of a page load: set the cookie and load it again without.
        case setCookie(location: String)
        case refused
    }

    static func tokenAccess(_ head: RequestHead, token: String, cookie: String) -> TokenAccess {
        guard !token.isEmpty else { return .refused }
        if let given = head.cookie(cookie), SSHAuthenticator.constantTimeEquals(given, token) {
            return .allowed
        }
        if let header = head.value("authorization") {
            let parts = header.split(separator: " ", maxSplits: 1).map(String.init)
            if parts.count == 2, ["token", "bearer"].contains(parts[0].lowercased()),
                SSHAuthenticator.constantTimeEquals(parts[1], token)
            {
                return .allowed
            }
        }
        guard let given = head.query("token"), SSHAuthenticator.constantTimeEquals(given, token) else {
            return .refused
        }
        // JupyterLab reads the token itself (and sets its own cookie): its link keeps it.
        let location = cookie == jupyterCookie ? head.target : head.target(without: "token")
        return head.method == "GET" && head.value("upgrade") == nil ? .setCookie(location: location) : .allowed
    }

    static func monitorAccess(_ head: RequestHead, token: String) -> TokenAccess {
        tokenAccess(head, token: token, cookie: monitorCookie)
    }

    static func cookiePath(_ cookie: String) -> String {
        switch cookie {
        case monitorCookie: "/monitor"
        case jupyterCookie: "/jupyter"
        default: "/"
        }
    }

    static func tokenRequiredText(cookie: String) -> String {
        switch cookie {
        case monitorCookie:
            "Tensorboard needs the instance's token: open the Tensorboard link of the instance "
                + "(servers.Tensorboard, with ?token=)."
        case jupyterCookie:
            "JupyterLab needs the instance's token: open the Jupyterlab link of the instance "
                + "(servers.Jupyterlab, with ?token=)."
        default:
            "This port needs the instance's token: open its link with ?token=<the instance's Jupyter token>, "
                + "or send Authorization: token <it>."
        }
    }
}
