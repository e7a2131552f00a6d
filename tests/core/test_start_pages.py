"""``/`` and ``/favicon.ico`` answer (a browser asks every site for both)."""

from django.contrib.staticfiles import finders


def test_the_root_goes_to_the_workspace_which_asks_a_visitor_to_log_in(client):
    response = client.get("/")
    workspace = client.get("/workspace/")

    assert (response.status_code, response["Location"]) == (302, "/workspace/")
    assert (workspace.status_code, workspace["Location"]) == (302, "/admin/login/?next=/workspace/")


def test_favicon_redirects_to_the_vendored_icon_served_as_a_static_file(client):
    response = client.get("/favicon.ico")

    assert (response.status_code, response["Location"]) == (301, "/static/favicon.ico")
    with open(finders.find("favicon.ico"), "rb") as icon:
        header = icon.read(6)
    assert header == b"\x00\x00\x01\x00\x01\x00"  # an ICO file holding one image
