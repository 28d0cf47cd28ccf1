"""Label Studio: the managed local server (``server``) and the one client every call goes through (``client``)."""
