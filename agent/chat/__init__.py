"""The data channel: typed chat, slash and JSON commands, agent events (see docs/data-channel.md).

`channel` (topics, readers, events) wires a call; `pipeline` runs commands; `conversation`
takes typed chat into the thread; `protocol` holds the v1 models the schemas are made from;
`handlers/` has one module per command.
"""
