"""The command layer of the data channel: typed slash commands and the JSON protocol.

Entry point: `agent.chat.dispatcher.CommandDispatcher`; wiring into a room:
`agent.chat.channel.attach_data_channel`. See docs/data-channel.md.
"""
