"""The one exception type that means 'the user asked for something wrong': exit 2, one line."""


class UserError(Exception):
    pass
