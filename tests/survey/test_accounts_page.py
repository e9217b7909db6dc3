"""/office/accounts: offices manage the staff accounts of their own area and below, every change logged."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from survey import db
from survey.areas import import_areas
from survey.auth import create_user, password_problems
from survey.models import Area, ExportLog, School, StaffSession, User
from survey.office.accounts import role_choices, strong_password
from tests.conftest import PASSWORD, csrf_token, logged_in, shot

AREAS = """code,name,level,parent_code,adult_population,responsible_unit
C,测试市,city,,,
D1,一区,district,C,,
D2,二区,district,C,,
S1,一街道,street,D1,,
S2,二街道,street,D1,,
S3,三街道,street,D2,,
A1,甲社区,community,S1,5000,
B1,丙社区,community,S2,4000,
E1,戊社区,community,S3,4000,
"""
# Offices (viewers) and the accounts they act on, with the area each target sits in.
VIEWERS = {"city": ("city", "C"), "d1": ("district", "D1"), "s1": ("street", "S1")}
TARGETS = {"t_a1": ("community", "A1"), "t_b1": ("community", "B1"), "t_e1": ("grid", "E1"), "t_d2": ("district", "D2"),
           "t_city": ("city", "C")}
IN_SCOPE = {  # viewer -> targets it may manage (all others answer 404)
    "city": {"t_a1", "t_b1", "t_e1", "t_d2", "t_city"},
    "d1": {"t_a1", "t_b1"},
    "s1": {"t_a1"},
}


@pytest.fixture
def staff(app):
    with app.app_context(), db.write_transaction() as session:
        import_areas(session, AREAS)
        session.add(School(name="第一小学", district=session.scalar(select(Area).where(Area.code == "D1"))))
        session.add(School(name="第二小学", district=session.scalar(select(Area).where(Area.code == "D2"))))
        session.flush()
        for name, (role, code) in {**VIEWERS, **TARGETS}.items():
            create_user(session, name, PASSWORD, role, code)
        create_user(session, "grid1", PASSWORD, "grid", "A1")
    return app


def login(app, username: str, password: str = PASSWORD, address: str = "10.0.0.1"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return logged_in(client, username, password)


def token(client) -> str:
    page = client.get("/office/accounts")
    assert page.status_code == 200
    return csrf_token(page.get_data(as_text=True))


def user_id(app, username: str) -> int:
    with app.app_context():
        return db.session().scalar(select(User.id).where(User.username == username))


def account(app, username: str) -> User:
    with app.app_context():
        session = db.session()
        user = session.scalar(select(User).where(User.username == username))
        session.expunge(user)
        return user


def logs(app) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session().execute(select(User.username, ExportLog.what).join(User, User.id == ExportLog.user_id)
                                    .where(ExportLog.what.startswith("account:")).order_by(ExportLog.id)).all()
        return [tuple(r) for r in rows]


def act(client, app, target: str, action: str, password: str = ""):
    target_id = user_id(app, target)
    if action == "reset":
        return client.post(f"/office/accounts/{target_id}/reset", data={"csrf_token": token(client), "password": password})
    return client.post(f"/office/accounts/{target_id}/{action}", data={"csrf_token": token(client)})


def create(client, **fields):
    data = {"csrf_token": token(client), "username": "", "role": "", "area": "", "school": "", "password": ""} | fields
    return client.post("/office/accounts/new", data=data)


@pytest.mark.parametrize("viewer", sorted(VIEWERS))
def test_the_list_shows_exactly_the_accounts_in_scope(staff, viewer):
    html = login(staff, viewer).get("/office/accounts").get_data(as_text=True)
    listed = set(re.findall(r"<td>(t_\w+)</td>", html))
    assert listed == IN_SCOPE[viewer]
    assert "账号管理" in html and 'href="/office/accounts"' in html  # the top bar links it
    offered = re.findall(r'<option value="(\w+)">', html.split('name="role"')[1].split("</select>")[0])
    assert offered == {"city": ["city", "district", "street", "community", "school", "grid", "unit"],
                       "d1": ["district", "street", "community", "school", "grid"],
                       "s1": ["street", "community", "grid"]}[viewer]


@pytest.mark.parametrize("viewer", sorted(VIEWERS))
@pytest.mark.parametrize("action", ["disable", "reset"])
def test_scope_matrix_of_actions(staff, viewer, action):
    client = login(staff, viewer)
    for target in sorted(TARGETS):
        before = account(staff, target)
        response = act(client, staff, target, action, password="An0ther-pass-77" if action == "reset" else "")
        after = account(staff, target)
        if target in IN_SCOPE[viewer]:
            assert response.status_code == 200, (viewer, target)
            if action == "disable":
                assert not after.active
                assert act(client, staff, target, "enable").status_code == 200
                assert account(staff, target).active
            else:
                assert after.password_hash != before.password_hash
        else:
            assert response.status_code == 404, (viewer, target)
            assert (after.active, after.password_hash) == (before.active, before.password_hash)


@pytest.mark.parametrize(("viewer", "fields", "allowed"), [
    ("city", {"role": "city", "area": "C"}, True),
    ("city", {"role": "school", "area": "D2", "school": "第二小学"}, True),
    ("city", {"role": "grid", "area": "E1"}, True),
    ("d1", {"role": "district", "area": "D1"}, True),
    ("d1", {"role": "school", "area": "D1", "school": "第一小学"}, True),
    ("d1", {"role": "city", "area": "C"}, False),  # never above its own level
    ("d1", {"role": "district", "area": "D2"}, False),  # another district
    ("d1", {"role": "school", "area": "D2", "school": "第二小学"}, False),  # a school out of scope
    ("d1", {"role": "grid", "area": "E1"}, False),
    ("s1", {"role": "grid", "area": "A1"}, True),
    ("s1", {"role": "community", "area": "A1"}, True),
    ("s1", {"role": "street", "area": "S1"}, True),
    ("s1", {"role": "street", "area": "S2"}, False),
    ("s1", {"role": "grid", "area": "B1"}, False),
    ("s1", {"role": "school", "area": "D1", "school": "第一小学"}, False),  # schools belong to the district
    ("s1", {"role": "district", "area": "D1"}, False),
])
def test_create_is_limited_to_the_viewers_level_and_area(staff, viewer, fields, allowed):
    client = login(staff, viewer)
    response = create(client, username="newbie", password="Fresh-pass-2026", **fields)
    created = account(staff, "newbie") if user_id(staff, "newbie") else None
    if allowed:
        assert response.status_code == 200
        assert created.role == fields["role"] and created.active
        assert logs(staff)[-1] == (viewer, f"account:create #{created.id} newbie")
        login(staff, "newbie", "Fresh-pass-2026", address="10.0.0.9")
    else:
        assert response.status_code in (400, 403)
        assert created is None
        assert logs(staff) == []


def test_role_choices_follow_the_level():
    class Viewer:  # role_choices reads only the role and the area's level
        def __init__(self, role, level):
            self.role, self.area = role, type("A", (), {"level": level})()

    assert [r for r, _ in role_choices(Viewer("city", "city"))] == ["city", "district", "street", "community", "school", "grid", "unit"]
    assert [r for r, _ in role_choices(Viewer("district", "district"))] == ["district", "street", "community", "school", "grid"]
    assert [r for r, _ in role_choices(Viewer("street", "street"))] == ["street", "community", "grid"]
    assert [r for r, _ in role_choices(Viewer("community", "community"))] == ["community", "grid"]
    assert role_choices(Viewer("grid", "community")) == []


def test_a_school_account_needs_a_school_of_the_district(staff):
    client = login(staff, "d1")
    response = create(client, username="school9", role="school", area="D1", school="不存在的学校", password="Fresh-pass-2026")
    assert response.status_code == 400 and "没有名为" in response.get_data(as_text=True)
    assert user_id(staff, "school9") is None


def test_an_office_never_acts_on_itself(staff):
    client = login(staff, "d1")
    before = account(staff, "d1")
    for action in ("disable", "enable", "reset"):
        assert act(client, staff, "d1", action, password="An0ther-pass-77").status_code == 403
    after = account(staff, "d1")
    assert after.active and after.password_hash == before.password_hash
    html = client.get("/office/accounts").get_data(as_text=True)
    assert f"/office/accounts/{before.id}/disable" not in html and f"/office/accounts/{before.id}/reset" not in html
    assert logs(staff) == []


def test_policy_errors_are_shown_and_nothing_changes(staff):
    client = login(staff, "city")
    before = account(staff, "t_a1")
    response = act(client, staff, "t_a1", "reset", password="short")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "至少10个字符" in html and "需同时包含字母和数字" in html
    assert account(staff, "t_a1").password_hash == before.password_hash
    response = create(client, username="weak", role="community", area="A1", password="weakweakweak")
    assert response.status_code == 400 and "需同时包含字母和数字" in response.get_data(as_text=True)
    assert user_id(staff, "weak") is None
    assert logs(staff) == []


@pytest.mark.parametrize("action", ["reset", "disable"])
def test_reset_and_disable_end_the_accounts_sessions(staff, action):
    target = login(staff, "t_a1", address="10.0.0.5")
    assert target.get("/office/accounts").status_code == 200
    office = login(staff, "s1")
    assert act(office, staff, "t_a1", action, password="An0ther-pass-77").status_code == 200
    gone = target.get("/office/accounts")
    assert gone.status_code == 302 and "/office/login" in gone.headers["Location"]
    with staff.app_context():
        assert db.session().scalar(select(func.count()).select_from(StaffSession)
                                   .where(StaffSession.user_id == user_id(staff, "t_a1"))) == 0
    if action == "reset":
        login(staff, "t_a1", "An0ther-pass-77", address="10.0.0.5")
    assert office.get("/office/accounts").status_code == 200  # the office's own session lives on


def test_a_generated_password_is_shown_once_and_works(staff):
    client = login(staff, "city")
    response = create(client, username="gen1", role="grid", area="A1")
    assert response.headers["Cache-Control"] == "no-store"
    password = re.search(r'<code class="secret">([^<]+)</code>', response.get_data(as_text=True)).group(1)
    assert password_problems(password, "gen1") == []
    assert "secret" not in client.get("/office/accounts").get_data(as_text=True)
    login(staff, "gen1", password, address="10.0.0.7")
    response = act(client, staff, "gen1", "reset")
    second = re.search(r'<code class="secret">([^<]+)</code>', response.get_data(as_text=True)).group(1)
    assert second != password
    login(staff, "gen1", second, address="10.0.0.8")


def test_every_change_is_logged_with_who_and_which_account(staff):
    client = login(staff, "d1")
    target = user_id(staff, "t_b1")
    act(client, staff, "t_b1", "disable")
    act(client, staff, "t_b1", "enable")
    act(client, staff, "t_b1", "reset", password="An0ther-pass-77")
    assert logs(staff) == [("d1", f"account:disable #{target} t_b1"), ("d1", f"account:enable #{target} t_b1"),
                           ("d1", f"account:reset #{target} t_b1")]
    with staff.app_context():
        areas = db.session().scalars(select(Area.code).join(ExportLog, ExportLog.area_id == Area.id)).all()
    assert areas == ["B1"] * 3
    html = client.get("/office/accounts").get_data(as_text=True)
    assert "停用 #" in html and "重置密码 #" in html
    # a street office sees only the changes of its own area: S1 has none
    assert "停用 #" not in login(staff, "s1").get("/office/accounts").get_data(as_text=True)


def test_csrf_is_required(staff):
    client = login(staff, "city")
    target = user_id(staff, "t_a1")
    assert client.post(f"/office/accounts/{target}/disable").status_code == 400
    assert client.post(f"/office/accounts/{target}/reset", data={"password": "An0ther-pass-77"}).status_code == 400
    assert client.post("/office/accounts/new", data={"username": "x1", "role": "grid", "area": "A1",
                                                      "password": "Fresh-pass-2026"}).status_code == 400
    assert account(staff, "t_a1").active and user_id(staff, "x1") is None and logs(staff) == []


def test_only_office_roles_open_the_page(staff, client):
    assert client.get("/office/accounts").status_code == 302  # anonymous: to the login page
    grid = login(staff, "grid1")
    assert grid.get("/office/accounts").status_code == 403
    assert grid.post(f"/office/accounts/{user_id(staff, 't_a1')}/disable").status_code in (400, 403)
    assert account(staff, "t_a1").active


def test_strong_password_passes_the_policy():
    for _ in range(50):
        assert password_problems(strong_password()) == []


def test_unit_accounts_are_the_city_offices(staff):
    from survey.rectification.units import import_units

    with staff.app_context(), db.write_transaction() as session:
        import_units(session, "name,contact,phone,communities,grids\n市教育局,,,A1,\n")
        create_user(session, "unit1", PASSWORD, "unit", "C", unit_name="市教育局")
    assert login(staff, "unit1", address="10.0.0.4").get("/office/accounts").status_code == 403
    city = login(staff, "city")
    html = city.get("/office/accounts").get_data(as_text=True)
    assert re.search(r"<td>unit1</td>.*?</details>\s*</td>\s*<td>责任单位</td>\s*<td>测试市 <span class=\"muted\">C</span> · 市教育局</td>",
                     html, re.S)
    assert '<option value="市教育局">' in html  # the units the city office may give an account
    assert create(city, username="unit2", role="unit", unit="不存在的单位", password="Fresh-pass-2026").status_code == 400
    made = create(city, username="unit2", role="unit", unit="市教育局", password="Fresh-pass-2026")
    assert made.status_code == 200 and "已新建账号 unit2（责任单位 · 市教育局）" in made.get_data(as_text=True)
    assert login(staff, "unit2", password="Fresh-pass-2026", address="10.0.0.5").get("/rectification/").status_code == 200
    assert create(login(staff, "d1"), username="unit3", role="unit", unit="市教育局",
                  password="Fresh-pass-2026").status_code == 403  # a district office gives no unit accounts
    assert act(city, staff, "unit1", "disable").status_code == 200 and not account(staff, "unit1").active
    assert act(login(staff, "d1"), staff, "unit1", "enable").status_code == 404


@pytest.mark.e2e
def test_on_a_phone_without_javascript(staff, live_server, browser):
    """Chromium at 390 px, JavaScript off: the page fits the width, 停用 and 重置密码 work by tapping."""
    page = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                               java_script_enabled=False, locale="zh-CN").new_page()
    page.goto(f"{live_server}/office/login")
    page.fill("input[name=username]", "d1")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    with page.expect_navigation():  # the next page, loaded: not the one being left
        page.click("text=账号管理")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    row = page.locator("tr", has_text="t_b1")
    row.locator("summary", has_text="停用").click()  # asks first: nothing is stopped by one tap
    row.locator("button", has_text="确认停用").click()
    assert "已停用 t_b1" in page.content()
    row = page.locator("tr", has_text="t_b1")
    row.locator("summary", has_text="重置密码").click()
    row.locator("button", has_text="重置").click()
    secret = page.locator("code.secret").inner_text()
    assert password_problems(secret, "t_b1") == []
    shot(page, "accounts-phone")


def test_an_area_may_be_named_instead_of_coded(staff):
    """Issue 26: typing 甲社区 instead of A1 works; a name outside the viewer's area is refused like a code."""
    client = login(staff, "d1")
    assert create(client, username="named1", role="grid", area="甲社区").status_code == 200
    with staff.app_context():
        assert db.session().scalar(select(Area.code).join(User, User.area_id == Area.id)
                                   .where(User.username == "named1")) == "A1"
    refused = create(client, username="named2", role="grid", area="戊社区")  # in D2, not under D1
    assert refused.status_code == 400 and "没有编码或名称为“戊社区”的区域" in refused.get_data(as_text=True)


def test_disabling_asks_first_and_sessions_are_not_places(staff):
    html = login(staff, "d1").get("/office/accounts").get_data(as_text=True)
    row = next(r for r in html.split("<tr") if "t_b1" in r)
    assert '<details class="confirm"><summary>停用</summary>' in row and "确认停用 t_b1" in row
    assert "处登录" not in html
