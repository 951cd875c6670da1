"""Web plumbing shared by every router: the context a request reads, the signed-request and
public-request dependencies, the error schema and handlers, and the headers and templates of
HTML pages. It imports no router's package; each domain reads its own state (live orders,
stream slots, the order context, the webhook signing key) through its own small dependency."""
