"""All queries live here, one module per aggregate. Every seller query takes `seller_id`."""


class NotFoundError(LookupError):
    """The object does not exist, or belongs to another seller (the same answer for both)."""


class ConflictError(Exception):
    def __init__(self, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
