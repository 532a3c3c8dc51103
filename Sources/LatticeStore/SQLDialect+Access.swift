import Foundation
import LatticeDomain

// What every store does alike, written once over its dialect: SSH keys, drained nodes,
// console sessions, snapshot images and coupons.

extension SSHKeyStore where Self: SQLDialect {
    public func createSSHKey(_ key: SSHKeyRecord) async throws {
        // One namespace's keys are counted and checked under its own lock, so two
        // concurrent adds cannot both pass the limit or both add one fingerprint.
        try await transact(
            locks: ["ssh-keys/" + key.namespace],
            reads: [
                "SELECT COUNT(*) FROM ssh_keys WHERE namespace = \(key.namespace)",
                "SELECT 1 FROM ssh_keys WHERE namespace = \(key.namespace) AND fingerprint = \(key.fingerprint)",
            ]
        ) { rows in
            try SSHKeyRules.checkRoom(count: try rows[0].first?.integer(0) ?? 0)
            if !rows[1].isEmpty { throw SSHKeyRules.duplicate(key.fingerprint) }
            return SQLDecision(writes: [
                """
                INSERT INTO ssh_keys (id, namespace, name, public_key, fingerprint, created_at)
                VALUES (\(key.id), \(key.namespace), \(key.name), \(key.publicKey), \(key.fingerprint),
                    \(key.createdAt))
                """
            ])
        }
    }

    public func sshKeys(namespace: String) async throws -> [SSHKeyRecord] {
        try await query(
            """
            SELECT id, namespace, name, public_key, fingerprint, created_at FROM ssh_keys
            WHERE namespace = \(namespace) ORDER BY created_at, id
            """
        ).map { row in
            SSHKeyRecord(
                id: try row.text(0),
                namespace: try row.text(1),
                name: try row.text(2),
                publicKey: try row.text(3),
                fingerprint: try row.text(4),
                createdAt: try row.date(5)
            )
        }
    }

    public func deleteSSHKey(id: String, namespace: String) async throws {
        try await transact(
            locks: [],
            reads: [StoreSQL("SELECT id FROM ssh_keys WHERE id = \(id) AND namespace = \(namespace)").forUpdate()]
        ) { rows in
            guard !rows[0].isEmpty else { throw LatticeError.notFound("ssh key '\(id)'") }
            return SQLDecision(writes: ["DELETE FROM ssh_keys WHERE id = \(id) AND namespace = \(namespace)"])
        }
    }
}

extension TemplateStore where Self: SQLDialect {
    public func createTemplate(_ template: InstanceTemplate) async throws {
        try await transact(
            locks: ["templates/" + template.namespace],
            reads: ["SELECT COUNT(*) FROM templates WHERE namespace = \(template.namespace)"]
        ) { rows in
            try InstanceTemplate.checkRoom(count: try rows[0].first?.integer(0) ?? 0)
            return SQLDecision(writes: [
                """
                INSERT INTO templates (id, namespace, public, created_at, doc)
                VALUES (\(template.id), \(template.namespace), \(template.isPublic ? 1 : 0),
                    \(template.createdAt ?? Date(timeIntervalSince1970: 0)), \(try Documents.encode(template)))
                """
            ])
        }
    }

    public func templates(visibleTo namespace: String) async throws -> [InstanceTemplate] {
        try await query(
            """
            SELECT doc FROM templates WHERE namespace = \(namespace) OR public = 1 ORDER BY created_at, id
            """
        ).map { try Documents.decode(InstanceTemplate.self, try $0.text(0)) }
    }

    public func template(id: String) async throws -> InstanceTemplate? {
        try await query("SELECT doc FROM templates WHERE id = \(id)").first.map {
            try Documents.decode(InstanceTemplate.self, try $0.text(0))
        }
    }

    public func deleteTemplate(id: String) async throws {
        try await transact(
            locks: [],
            reads: [StoreSQL("SELECT id FROM templates WHERE id = \(id)").forUpdate()]
        ) { rows in
            guard !rows[0].isEmpty else { throw LatticeError.notFound("template '\(id)'") }
            return SQLDecision(writes: ["DELETE FROM templates WHERE id = \(id)"])
        }
    }
}

extension BudgetStore where Self: SQLDialect {
    public func setBudget(_ budget: Budget) async throws {
        try await execute(
            [
                """
                INSERT INTO budgets (namespace, action, doc) VALUES (\(budget.namespace), \(budget.action.rawValue),
                    \(try Documents.encode(budget)))
                ON CONFLICT (namespace) DO UPDATE SET action = excluded.action, doc = excluded.doc
                """,
                // A new budget is told of afresh: the thresholds the spend already passed alert again.
                "DELETE FROM alert_marks WHERE namespace = \(budget.namespace) AND key LIKE 'budget:%'",
            ],
            notices: [.startInputs]
        )
    }

    public func budget(namespace: String) async throws -> Budget? {
        try await query("SELECT doc FROM budgets WHERE namespace = \(namespace)").first.map {
            try Documents.decode(Budget.self, try $0.text(0))
        }
    }

    public func stoppingBudgets() async throws -> [Budget] {
        try await query("SELECT doc FROM budgets WHERE action = 'stop' ORDER BY namespace").map {
            try Documents.decode(Budget.self, try $0.text(0))
        }
    }
}

extension NodeStore where Self: SQLDialect {
    public func setDrained(node: String, _ drained: Bool, at: Date) async throws {
        try await execute(
            [
                drained
                    ? "INSERT INTO node_drains (node, since) VALUES (\(node), \(at)) ON CONFLICT (node) DO NOTHING"
                    : "DELETE FROM node_drains WHERE node = \(node)"
            ],
            notices: [.startInputs]
        )
    }

    public func drainedNodes() async throws -> [NodeDrain] {
        try await query("SELECT node, since FROM node_drains ORDER BY node").map {
            NodeDrain(node: try $0.text(0), since: try $0.date(1))
        }
    }

    public func startInputs(namespace: String) async throws -> StartInputs {
        try await loadStartInputs(namespace: namespace)
    }

    /// The namespace's budget and default idle stop, and the drained nodes, read in one
    /// statement (`startInputs` of a store that keeps no memo).
    public func loadStartInputs(namespace: String) async throws -> StartInputs {
        var inputs = StartInputs()
        for row in try await query(
            """
            SELECT 'b', doc, CAST(NULL AS DOUBLE PRECISION) FROM budgets WHERE namespace = \(namespace)
            UNION ALL SELECT 'i', doc, CAST(NULL AS DOUBLE PRECISION) FROM idle_defaults WHERE namespace = \(namespace)
            UNION ALL SELECT 'd', node, since FROM node_drains
            """
        ) {
            switch try row.text(0) {
            case "b": inputs.budget = try Documents.decode(Budget.self, try row.text(1))
            case "i": inputs.idleDefault = try Documents.decode(IdleDefault.self, try row.text(1))
            default: inputs.drained.append(NodeDrain(node: try row.text(1), since: try row.date(2)))
            }
        }
        inputs.drained.sort { $0.node < $1.node }
        return inputs
    }
}

extension SessionStore where Self: SQLDialect {
    public func createSession(idHash: String, _ session: ConsoleSessionRecord, now: Date) async throws {
        try await execute([
            // A few expired sessions go with each new one.
            """
            DELETE FROM console_sessions WHERE id_hash IN
                (SELECT id_hash FROM console_sessions WHERE expires_at <= \(now) LIMIT 100)
            """,
            // Past the limit, the namespace's oldest make room.
            """
            DELETE FROM console_sessions WHERE id_hash IN (SELECT id_hash FROM console_sessions
                WHERE namespace = \(session.namespace) ORDER BY expires_at DESC
                LIMIT 1000000000 OFFSET \(SessionLimits.perNamespace - 1))
            """,
            """
            INSERT INTO console_sessions (id_hash, namespace, token_id, token_hash, admin, expires_at, csrf)
            VALUES (\(idHash), \(session.namespace), \(session.tokenID), \(session.tokenHash), \(session.isAdmin),
                \(session.expiresAt), \(session.csrf))
            """,
        ])
    }

    public func session(idHash: String, now: Date) async throws -> ConsoleSessionRecord? {
        try await query(
            """
            SELECT namespace, token_id, token_hash, admin, expires_at, csrf FROM console_sessions
            WHERE id_hash = \(idHash) AND expires_at > \(now)
            """
        ).first.map { row in
            ConsoleSessionRecord(
                namespace: try row.text(0),
                tokenID: try row.text(1),
                tokenHash: try row.text(2),
                isAdmin: try row.bool(3),
                expiresAt: try row.date(4),
                csrf: try row.text(5)
            )
        }
    }

    public func endSession(idHash: String) async throws {
        try await execute(["DELETE FROM console_sessions WHERE id_hash = \(idHash)"])
    }

    public func setRevealed(idHash: String, sealed: Data) async throws {
        try await execute(["UPDATE console_sessions SET revealed = \(sealed) WHERE id_hash = \(idHash)"])
    }

    public func takeRevealed(idHash: String) async throws -> Data? {
        try await transact(
            locks: [],
            reads: [StoreSQL("SELECT revealed FROM console_sessions WHERE id_hash = \(idHash)").forUpdate()]
        ) { rows in
            guard let sealed = try rows[0].first?.optionalBlob(0) else { return SQLDecision(result: nil) }
            return SQLDecision(
                writes: ["UPDATE console_sessions SET revealed = NULL WHERE id_hash = \(idHash)"],
                result: sealed
            )
        }
    }
}

extension ImageStore where Self: SQLDialect {
    public func saveImage(_ image: SnapshotImage, at: Date) async throws {
        let doc = try Documents.encode(image)
        try await transact(
            locks: [],
            reads: [
                StoreSQL(
                    "SELECT doc FROM images WHERE namespace = \(image.namespace) AND reference = \(image.reference)"
                ).forUpdate()
            ]
        ) { rows in
            let previous = try rows[0].first.map { try Documents.decode(SnapshotImage.self, try $0.text(0)) }
            let events = EventRule.image(from: previous, to: image, at: at)
            return SQLDecision(
                writes: [
                    """
                    INSERT INTO images (namespace, reference, doc, created_at)
                    VALUES (\(image.namespace), \(image.reference), \(doc), \(image.createdAt))
                    ON CONFLICT (namespace, reference) DO UPDATE SET doc = excluded.doc
                    """
                ] + (try EventSQL.append(events)),
                notices: EventSQL.notices(events)
            )
        }
    }

    public func images(namespace: String) async throws -> [SnapshotImage] {
        try await query("SELECT doc FROM images WHERE namespace = \(namespace) ORDER BY created_at, reference").map {
            try Documents.decode(SnapshotImage.self, try $0.text(0))
        }
    }

    public func deleteImage(namespace: String, reference: String) async throws -> Bool {
        try await transact(
            locks: [],
            reads: [
                StoreSQL("SELECT reference FROM images WHERE namespace = \(namespace) AND reference = \(reference)")
                    .forUpdate()
            ]
        ) { rows in
            guard !rows[0].isEmpty else { return SQLDecision(result: false) }
            return SQLDecision(
                writes: ["DELETE FROM images WHERE namespace = \(namespace) AND reference = \(reference)"],
                result: true
            )
        }
    }
}

extension MeterStore where Self: SQLDialect {
    public func createCoupon(_ coupon: Coupon) async throws {
        let doc = try Documents.encode(coupon)
        try await transact(locks: ["coupon/" + coupon.id], reads: ["SELECT id FROM coupons WHERE id = \(coupon.id)"]) {
            guard $0[0].isEmpty else {
                throw LatticeError(.conflict, code: "AlreadyExists", "coupon '\(coupon.id)' already exists")
            }
            return SQLDecision(writes: ["INSERT INTO coupons (id, doc) VALUES (\(coupon.id), \(doc))"])
        }
    }

    public func disableCoupon(id: String, at: Date) async throws -> Coupon {
        try await transact(locks: ["coupon/" + id], reads: ["SELECT doc FROM coupons WHERE id = \(id)"]) {
            guard let doc = try $0[0].first?.text(0) else { throw LatticeError.notFound("coupon '\(id.prefix(80))'") }
            var coupon = try Documents.decode(Coupon.self, doc)
            guard coupon.disabledAt == nil else { return SQLDecision(result: coupon) }
            coupon.disabledAt = at
            let next = try Documents.encode(coupon)
            return SQLDecision(writes: ["UPDATE coupons SET doc = \(next) WHERE id = \(id)"], result: coupon)
        }
    }

    public func coupons() async throws -> [Coupon] {
        try await query("SELECT doc FROM coupons ORDER BY id").map { try Documents.decode(Coupon.self, try $0.text(0)) }
    }
}

extension IdleDefaultStore where Self: SQLDialect {
    public func idleDefault(namespace: String) async throws -> IdleDefault? {
        try await query("SELECT doc FROM idle_defaults WHERE namespace = \(namespace)").first.map {
            try Documents.decode(IdleDefault.self, try $0.text(0))
        }
    }

    public func setIdleDefault(_ idle: IdleDefault) async throws {
        try await execute(
            [
                """
                INSERT INTO idle_defaults (namespace, doc) VALUES (\(idle.namespace), \(try Documents.encode(idle)))
                ON CONFLICT (namespace) DO UPDATE SET doc = excluded.doc
                """
            ],
            notices: [.startInputs]
        )
    }

    public func clearIdleDefault(namespace: String) async throws -> Bool {
        try await transact(
            locks: [],
            reads: [StoreSQL("SELECT namespace FROM idle_defaults WHERE namespace = \(namespace)").forUpdate()]
        ) { rows in
            guard !rows[0].isEmpty else { return SQLDecision(result: false) }
            return SQLDecision(
                writes: ["DELETE FROM idle_defaults WHERE namespace = \(namespace)"],
                notices: [.startInputs],
                result: true
            )
        }
    }
}
