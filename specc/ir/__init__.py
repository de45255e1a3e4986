"""The IR: the contract between the front end and every backend, exporter and tool.

`specc.ir.ops` declares every op once (arguments, shape rule, parameters,
initialisation, equation, cost, traits); `specc.ir.spec` holds models, data
sources, optimizers and tasks; `specc.ir.init` the initialisation schemes.
"""
