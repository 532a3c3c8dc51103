import Foundation
import LatticeDomain

extension LatticeAPI {
    // MARK: Templates (SPEC §11)

    /// The catalog's official templates: one per official image.
    var officialTemplates: [InstanceTemplate] { InstanceTemplate.official(images: catalog.images) }

    /// `POST /templates`: a namespace's own, or (admins only) a public one.
    public func createTemplate(principal: Principal, body: JSONValue) async throws -> TemplateWire {
        var rng = SystemRandomNumberGenerator()
        let template = try InstanceTemplate(
            fields: try JSONFields(body),
            id: "tpl-" + Identifiers.uuid(using: &rng).prefix(8).lowercased(),
            namespace: principal.namespace,
            createdAt: clock.now()
        )
        if template.isPublic, !principal.isAdmin {
            throw LatticeError.forbidden("public: only admins make public templates; leave it out for your own")
        }
        try await checkImage(template.image, namespace: principal.namespace)
        IdempotencyMiddleware.expect(TemplateWire(template))
        try await store.createTemplate(template)
        return TemplateWire(template)
    }

    /// `GET /templates`: the official ones, then the public ones, then the namespace's own.
    public func templates(principal: Principal, page: PageRequest) async throws -> Page<TemplateWire> {
        let stored = try await store.templates(visibleTo: principal.namespace)
        let ordered = officialTemplates + stored.filter(\.isPublic) + stored.filter { !$0.isPublic }
        return Self.page(ordered.map(TemplateWire.init), page)
    }

    /// One template the caller may use: an official one, a public one or one of its own.
    public func template(principal: Principal, id: String) async throws -> InstanceTemplate {
        if let official = officialTemplates.first(where: { $0.id == id }) { return official }
        guard Self.isTemplateID(id), let stored = try await store.template(id: id),
            stored.isPublic || stored.namespace == principal.namespace
        else { throw LatticeError.notFound("template '\(id.prefix(64))'; see GET /mdc/api/v1/templates") }
        return stored
    }

    /// `DELETE /templates/{id}`: a namespace deletes its own; admins also delete public ones.
    public func deleteTemplate(principal: Principal, id: String) async throws {
        if officialTemplates.contains(where: { $0.id == id }) {
            throw LatticeError.forbidden("template '\(id)' is an official one, from the catalog file")
        }
        let found = try await template(principal: principal, id: id)
        guard found.namespace == principal.namespace || principal.isAdmin else {
            throw LatticeError.forbidden("template '\(id)' is a public one; only admins delete it")
        }
        try await store.deleteTemplate(id: id)
    }

    static func isTemplateID(_ id: String) -> Bool {
        id.count <= 64 && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
    }
}
