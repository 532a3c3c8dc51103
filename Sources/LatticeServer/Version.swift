/// The version of this build: `lattice --version`, `/healthz`, `lattice_build_info` and the
/// release packages (`scripts/package.sh` reads it from the built binary) all say this one.
public enum LatticeVersion {
    public static let current = "0.2.0"
}
