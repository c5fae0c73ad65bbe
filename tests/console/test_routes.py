"""``GET /ui`` and ``GET /ui/<page>`` over plain HTTP: the catalogue, one HTML shell per page,
an HTML 404, the assets, and the same-origin policy every console page carries."""

from __future__ import annotations

from qris_soundbox.control_plane.console import PAGES
from tests.support import RunningPlatform


async def test_the_console_address_opens_the_login_page(running: RunningPlatform) -> None:
    response = await running.http.get("/ui")
    assert response.status_code == 302 and response.headers["location"] == "/ui/admin-login"


async def test_the_catalogue_links_every_page_by_audience(running: RunningPlatform) -> None:
    response = await running.http.get("/ui/pages")
    assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
    for slug in PAGES:
        assert f'href="/ui/{slug}"' in response.text
    assert response.text.index("admin-login") < response.text.index("merchant-login")


async def test_every_page_is_an_html_shell_that_keeps_requests_on_this_origin(running: RunningPlatform) -> None:
    for slug, (_, title, _) in PAGES.items():
        response = await running.http.get(f"/ui/{slug}")
        assert response.status_code == 200, slug
        assert f'data-page="{slug}"' in response.text and title in response.text
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy
        assert "http" not in response.text.replace('lang="id"', "")  # no absolute URL to anywhere


async def test_an_unknown_page_is_an_html_404_not_a_json_envelope(running: RunningPlatform) -> None:
    for path in ("/ui/nope", "/ui/assets/nope.js", "/ui/assets/shell.html"):
        response = await running.http.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert 'href="/ui/pages"' in response.text


async def test_the_assets_are_served_with_their_types(running: RunningPlatform) -> None:
    script = await running.http.get("/ui/assets/console.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    style = await running.http.get("/ui/assets/console.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    # No third-party host anywhere in what the browser loads.
    for body in (script.text, style.text):
        assert "http://" not in body and "https://" not in body


async def test_the_console_is_not_part_of_the_api_schema(running: RunningPlatform) -> None:
    schema = (await running.http.get("/schema/openapi.json")).json()
    assert not [path for path in schema["paths"] if path.startswith("/ui")]
    assert "/merchant/transactions" in schema["paths"]
