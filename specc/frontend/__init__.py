"""The front end: spec text to a checked IR.

syntax (Lark parse) -> lower (parse tree to IR) -> passes (resolve names,
validate, bind sizes, infer shapes); fmt prints the canonical layout back.
"""
