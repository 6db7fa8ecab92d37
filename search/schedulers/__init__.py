"""When to stop a running trial early. ``base`` holds the interface, each scheduler is one
module with its own settings, ``registry`` lists them by the name a config gives."""
