import Foundation

/// Whether a wallet may start more work (SPEC §6, issue "hardening" 5). A create or a
/// power_on goes ahead only while the balance covers an hour of everything the namespace
/// would then run at pay-as-you-go rates, plus any prepaid term it pays now; a negative
/// balance starts nothing, whatever coupon is offered.
public enum WalletRule {
    /// What an instance costs per hour while it holds GPUs: its pay-as-you-go price less
    /// its coupon; prepaid instances are paid up front and cost nothing per hour.
    public static func hourlyRate(of instance: Instance) -> Money {
        guard instance.cost.costType == SellingType.payAsYouGo.rawValue else { return .zero }
        let percentOff = Int64(min(100, max(0, instance.cost.percentOff ?? 0)))
        return Money(units: instance.cost.unitPrice.units * (100 - percentOff) / 100)
    }

    /// What an instance commits its namespace to per hour right now: its rate while it
    /// holds (or is about to hold) GPUs, nothing otherwise.
    public static func commitment(of instance: Instance?) -> Money {
        guard let instance, instance.placement != nil, !instance.desired.deleted else { return .zero }
        return hourlyRate(of: instance)
    }

    /// Refuses with `402` unless `balance` covers `committed` (the namespace's hourly
    /// commitments before this write) plus `adding` (the hourly rate of what starts) plus
    /// `upfront` (a prepaid term charged now).
    public static func check(
        namespace: String,
        balance: Money,
        committed: Money,
        adding: Money,
        upfront: Money
    ) throws {
        guard balance >= .zero else {
            throw LatticeError(
                .paymentRequired,
                code: "InsufficientBalance",
                "balance \(balance) is negative; ask an admin to credit namespace '\(namespace)' before starting work"
            )
        }
        let required = committed + adding + upfront
        guard balance >= required else {
            var parts = ["an hour of this instance (\(adding))"]
            if committed > .zero { parts.append("an hour of what already runs (\(committed))") }
            if upfront > .zero { parts.append("the prepaid term (\(upfront))") }
            throw LatticeError(
                .paymentRequired,
                code: "InsufficientBalance",
                "balance \(balance) does not cover \(required): "
                    + parts.joined(separator: " + ") + "; ask an admin to credit namespace '\(namespace)'"
            )
        }
    }
}
