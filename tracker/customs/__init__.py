"""Customs and inspection declarations: code tables, validation, documents, rendering, workflow."""

#: every document a dossier yields (contract: DESIGN §10)
KINDS: tuple[str, ...] = (
    "commercial_invoice",
    "packing_list",
    "cn22",
    "cn23",
    "cn_export_declaration",
    "cbec_export_list",
    "inspection_declaration",
)
