"""Static files the production way: collected under hashed names, served by the node itself, cached for good.

The node runs mcpsite.settings with DEBUG off, its files collected first into
a temporary STATIC_ROOT, as the image's build does (GraphiQL's npm files
included: `make pytest` installs them). A page names its files by their
hashed names; each answers 200 with its type and an immutable Cache-Control
of ten years, gzipped for a client that accepts it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx2 as httpx
import pytest

from tests.nodes import Node, manage

PRODUCTION = {"DJANGO_SETTINGS_MODULE": "mcpsite.settings", "DJANGO_DEBUG": "0"}
FOREVER = "max-age=315360000, public, immutable"
# `name.0123456789ab.ext`: the hash ManifestStaticFilesStorage puts in a collected file's name.
HASHED = re.compile(r"^/static/[\w/.-]+\.[0-9a-f]{12}\.\w+$")


@pytest.fixture(scope="module")
def production_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    folder = tmp_path_factory.mktemp("production")
    env = {
        **PRODUCTION,
        "DJANGO_STATIC_ROOT": str(folder / "static"),
        "DJANGO_SQLITE_PATH": str(folder / "db.sqlite3"),
        # Off by default with DEBUG off; on here, for its page's files.
        "GRAPHQL_GRAPHIQL": "1",
    }
    manage(env, "collectstatic", "--noinput")
    node = Node(env=env, log_path=folder / "daphne.log").start()
    yield node
    node.stop()


@pytest.fixture
def client(production_node: Node) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=production_node.url, timeout=10.0) as client:
        yield client


def static_links(page: str, attribute: str) -> list[str]:
    return re.findall(rf'{attribute}="(/static/[^"]+)"', page)


def assert_served_for_good(client: httpx.Client, link: str, content_type: str) -> None:
    """`link` has a hashed name and comes back gzipped, of `content_type`, cached for ten years."""
    assert HASHED.match(link), link
    answer = client.get(link, headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200, link
    assert answer.headers["content-type"].startswith(content_type), link
    assert answer.headers["cache-control"] == FOREVER, link
    assert answer.headers["content-encoding"] == "gzip", link
    assert answer.text.strip(), link


def admin_stylesheets(client: httpx.Client, page: str) -> list[str]:
    """The static stylesheet links of `page`, which extends the admin's base template."""
    answer = client.get(page)
    assert answer.status_code == 200
    stylesheets = static_links(answer.text, "href")
    assert any(link.startswith("/static/admin/css/base.") for link in stylesheets)
    return stylesheets


def test_the_admin_names_its_stylesheets_by_hash_and_they_are_cached_for_good(client: httpx.Client) -> None:
    for link in admin_stylesheets(client, "/admin/login/"):
        assert_served_for_good(client, link, "text/css")


def test_graphiql_s_page_loads_only_the_node_s_own_files_by_their_hashed_names(client: httpx.Client) -> None:
    page = client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert re.findall(r'(?:src|href)="([^"]*)"', page.text) == [
        *static_links(page.text, "href"),
        *static_links(page.text, "src"),
    ]
    scripts = static_links(page.text, "src")
    assert [link.rsplit("/", 1)[1].split(".")[0] for link in scripts] == ["react", "react-dom", "graphiql", "graphiql"]

    for link in [*scripts, *static_links(page.text, "href")]:
        assert_served_for_good(client, link, "text/css" if link.endswith(".css") else "text/javascript")


def test_the_front_page_names_the_admin_s_stylesheets_by_hash(client: httpx.Client) -> None:
    for link in admin_stylesheets(client, "/"):
        assert HASHED.match(link), link
        assert client.get(link).status_code == 200, link


def test_a_browser_that_has_the_file_gets_304_and_a_head_request_no_body(client: httpx.Client) -> None:
    link = next(link for link in static_links(client.get("/admin/login/").text, "href") if "/base." in link)
    first = client.get(link)

    again = client.get(link, headers={"If-None-Match": first.headers["etag"]})
    head = client.head(link)
    part = client.get(link, headers={"Range": "bytes=0-9", "Accept-Encoding": "identity"})

    assert again.status_code == 304
    assert again.content == b""
    assert head.status_code == 200
    assert head.headers["content-length"] == first.headers["content-length"]
    assert head.content == b""
    assert part.status_code == 206
    assert part.content == first.content[:10]


def test_a_name_without_its_hash_is_served_but_not_for_long(client: httpx.Client) -> None:
    answer = client.get("/static/admin/css/base.css")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "max-age=60, public"


def test_a_file_that_is_not_there_is_django_s_404(client: httpx.Client) -> None:
    assert client.get("/static/admin/css/nothing.css").status_code == 404
