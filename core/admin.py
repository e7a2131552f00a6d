"""core's models are registered in accounts/admin.py.

core is the bottom layer (STYLE.md rule 1) and must not import accounts, while
every admin class subclasses accounts.admin_base.TenantAdmin; so the
IdempotencyRecord admin (superuser-only, read-only) lives one layer up.
"""
