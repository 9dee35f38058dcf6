#!/usr/bin/env python3
"""Write the training CSVs of the routed banking77 swarm.

Reads the shared banking77 CSV by path and writes, into OUT_DIR:
  coarse.csv        text,group    (every row, labeled with its group)
  fine-GROUP.csv    text,category (the rows of one group only)
The data stays outside the repository; only this script is committed.

usage: banking77_groups.py TRAIN.csv OUT_DIR
"""
import csv
import os
import sys

# Six groups of intents, by what the customer is asking about.
GROUPS = {
    "card": [
        "activate_my_card", "apple_pay_or_google_pay", "card_about_to_expire",
        "card_acceptance", "card_arrival", "card_delivery_estimate",
        "card_linking", "card_not_working", "card_swallowed", "change_pin",
        "compromised_card", "contactless_not_working",
        "disposable_card_limits", "get_disposable_virtual_card",
        "get_physical_card", "getting_spare_card", "getting_virtual_card",
        "lost_or_stolen_card", "order_physical_card", "pin_blocked",
        "supported_cards_and_currencies", "virtual_card_not_working",
        "visa_or_mastercard",
    ],
    "payment": [
        "Refund_not_showing_up", "card_payment_fee_charged",
        "card_payment_not_recognised", "card_payment_wrong_exchange_rate",
        "declined_card_payment", "direct_debit_payment_not_recognised",
        "extra_charge_on_statement", "pending_card_payment",
        "request_refund", "reverted_card_payment?",
        "transaction_charged_twice",
    ],
    "transfer": [
        "balance_not_updated_after_bank_transfer", "beneficiary_not_allowed",
        "cancel_transfer", "declined_transfer", "failed_transfer",
        "pending_transfer", "receiving_money", "transfer_fee_charged",
        "transfer_into_account", "transfer_not_received_by_recipient",
        "transfer_timing",
    ],
    "top_up": [
        "automatic_top_up",
        "balance_not_updated_after_cheque_or_cash_deposit", "pending_top_up",
        "top_up_by_bank_transfer_charge", "top_up_by_card_charge",
        "top_up_by_cash_or_cheque", "top_up_failed", "top_up_limits",
        "top_up_reverted", "topping_up_by_card", "verify_top_up",
    ],
    "cash": [
        "atm_support", "cash_withdrawal_charge",
        "cash_withdrawal_not_recognised", "declined_cash_withdrawal",
        "pending_cash_withdrawal", "wrong_amount_of_cash_received",
        "wrong_exchange_rate_for_cash_withdrawal",
    ],
    "account": [
        "age_limit", "country_support", "edit_personal_details",
        "exchange_charge", "exchange_rate", "exchange_via_app",
        "fiat_currency_support", "lost_or_stolen_phone",
        "passcode_forgotten", "terminate_account",
        "unable_to_verify_identity", "verify_my_identity",
        "verify_source_of_funds", "why_verify_identity",
    ],
}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    src, out_dir = sys.argv[1], sys.argv[2]
    group_of = {}
    for group, intents in GROUPS.items():
        for intent in intents:
            if intent in group_of:
                sys.exit(f"{intent} is in two groups")
            group_of[intent] = group
    with open(src, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    missing = sorted({r["category"] for r in rows} - set(group_of))
    if missing:
        sys.exit(f"intents without a group: {', '.join(missing)}")
    with open(os.path.join(out_dir, "coarse.csv"), "w", newline="",
              encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "group"])
        for r in rows:
            w.writerow([r["text"], group_of[r["category"]]])
    for group in GROUPS:
        path = os.path.join(out_dir, f"fine-{group}.csv")
        n = 0
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "category"])
            for r in rows:
                if group_of[r["category"]] == group:
                    w.writerow([r["text"], r["category"]])
                    n += 1
        print(f"{path}: {n} rows, {len(GROUPS[group])} intents")


if __name__ == "__main__":
    main()
