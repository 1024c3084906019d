"""Access control against a real vpxd: a read-only user is refused every
mutating route (403 UNAUTHORIZED, nothing changes, the refusal is
audited); permissions propagate down the inventory tree."""
import pytest

from test_vpxd_util import ADMIN, Vpxd, check_error, fill_path, make_tree, param_values

RO_USER, RO_PW = "reader", "Reader-pass-1"
PU_USER, PU_PW = "operator", "Operator-pass-1"


@pytest.fixture(scope="module")
def env():
    v = Vpxd().start()
    admin = v.login()
    tree = make_tree(v, admin)
    for user, pw in ((RO_USER, RO_PW), (PU_USER, PU_PW)):
        st, js, _ = v.request("POST", "/api/kvc/users", {"name": user, "password": pw},
                              token=admin)
        assert st == 201, js
    st, js, _ = v.request("POST", "/api/kvc/permissions",
                          {"entity": "group-d1", "principal": RO_USER, "role": -2,
                           "propagate": True}, token=admin)
    assert st == 204, js
    yield v, admin, tree
    assert v.stop() == 0


def bodies(tree):
    """A well-formed body for each mutating route, so only the privilege
    can refuse it."""
    return {
        ("post", "/api/vcenter/vm"): {"guest_OS": "OTHER_LINUX_64", "name": "x",
                                      "placement": {"folder": tree["vm_folder"],
                                                    "cluster": tree["cluster"]}},
        ("post", "/api/vcenter/host"): {"hostname": "127.0.0.1", "port": 9, "user_name": "r",
                                        "password": "p", "folder": tree["cluster"],
                                        "thumbprint_verification": "NONE"},
        ("post", "/api/vcenter/datacenter"): {"name": "nope"},
        ("post", "/api/kvc/cluster"): {"name": "nope", "folder": tree["datacenter"]},
        ("post", "/api/kvc/folder"): {"name": "nope", "parent_folder": tree["vm_folder"]},
        ("post", "/api/vcenter/resource-pool"): {"name": "nope", "parent": tree["root_pool"]},
        ("patch", "/api/vcenter/resource-pool/{resource_pool}"): {"name": "renamed"},
        ("patch", "/api/vcenter/vm/{vm}/hardware"): {"cpu": {"count": 2}},
        ("post", "/api/kvc/alarms/{alarm}?action=acknowledge"): {"object": tree["datacenter"]},
        ("post", "/api/kvc/users"): {"name": "mallory", "password": "Mallory-pass-1"},
        ("patch", "/api/kvc/users/{user}"): {"password": "Changed-pass-1"},
        ("post", "/api/kvc/roles"): {"name": "evil", "privileges": ["System.All"]},
        ("post", "/api/kvc/permissions"): {"entity": "group-d1", "principal": RO_USER,
                                           "role": -1, "propagate": True},
    }


EXEMPT = {("post", "/api/session"), ("delete", "/api/session"),
          ("post", "/rest/com/vmware/cis/session"), ("delete", "/rest/com/vmware/cis/session"),
          ("post", "/rest/com/vmware/cis/session?~action=get"),
          ("post", "/api/cis/tasks?action=list")}      # reads, though POST


def snapshot(v, admin):
    out = {}
    for p in ("/api/vcenter/datacenter", "/api/vcenter/folder", "/api/vcenter/cluster",
              "/api/vcenter/resource-pool", "/api/vcenter/host", "/api/vcenter/vm",
              "/api/kvc/users", "/api/kvc/roles", "/api/kvc/permissions"):
        st, js, _ = v.request("GET", p, token=admin)
        assert st == 200
        out[p] = js
    return out


def test_read_only_user_is_refused_every_mutation(env):
    v, admin, tree = env
    ro = v.login(RO_USER, RO_PW)
    st, doc, _ = v.request("GET", "/api/openapi.json")
    body = bodies(tree)
    values = param_values(tree)
    values["user"] = ADMIN
    values["principal"] = ADMIN
    before = snapshot(v, admin)
    tried = 0
    for path, item in doc["paths"].items():
        for method in item:
            if method == "get" or (method, path) in EXEMPT:
                continue
            url = fill_path(path, values)
            st, js, _ = v.request(method.upper(), url, body.get((method, path)), token=ro)
            check_error(st, js, 403, "UNAUTHORIZED")
            tried += 1
    assert tried >= 20
    assert snapshot(v, admin) == before
    st, log, _ = v.request("GET", "/api/kvc/audit?limit=10000", token=admin)
    denied = [a for a in log if a["user"] == RO_USER and a["result"] == "UNAUTHORIZED"]
    assert len(denied) == tried
    # Reading is allowed.
    for p in ("/api/vcenter/datacenter", "/api/vcenter/vm", "/api/kvc/events",
              "/api/vcenter/datacenter/" + tree["datacenter"]):
        st, js, _ = v.request("GET", p, token=ro)
        assert st == 200, (p, js)
    # Only administrators read the audit log and the users.
    for p in ("/api/kvc/audit", "/api/kvc/users"):
        st, js, _ = v.request("GET", p, token=ro)
        check_error(st, js, 403, "UNAUTHORIZED")


def test_permissions_propagate_down_the_tree(env):
    v, admin, tree = env
    # A custom role on the datacenter only: folders below it inherit it,
    # objects elsewhere do not.
    st, role, _ = v.request("POST", "/api/kvc/roles",
                            {"name": "FolderMaker", "privileges": ["Folder.Create",
                                                                   "System.Read"]},
                            token=admin)
    assert st == 201 and isinstance(role, int)
    st, js, _ = v.request("POST", "/api/kvc/permissions",
                          {"entity": tree["datacenter"], "principal": PU_USER, "role": role},
                          token=admin)
    assert st == 204, js
    pu = v.login(PU_USER, PU_PW)
    st, f, _ = v.request("POST", "/api/kvc/folder",
                         {"name": "mine", "parent_folder": tree["vm_folder"]}, token=pu)
    assert st == 201, f
    st, dc2, _ = v.request("POST", "/api/vcenter/datacenter", {"name": "Other"}, token=admin)
    st, info, _ = v.request("GET", "/api/vcenter/datacenter/" + dc2, token=admin)
    st, js, _ = v.request("POST", "/api/kvc/folder",
                          {"name": "theirs", "parent_folder": info["vm_folder"]}, token=pu)
    check_error(st, js, 403, "UNAUTHORIZED")
    # Lists show only what the user may see.
    st, js, _ = v.request("GET", "/api/vcenter/datacenter", token=pu)
    assert [d["datacenter"] for d in js] == [tree["datacenter"]]
    # Without propagation the permission holds on the object itself only.
    st, js, _ = v.request("POST", "/api/kvc/permissions",
                          {"entity": tree["datacenter"], "principal": PU_USER, "role": role,
                           "propagate": False}, token=admin)
    assert st == 204
    st, js, _ = v.request("POST", "/api/kvc/folder",
                          {"name": "again", "parent_folder": tree["vm_folder"]}, token=pu)
    check_error(st, js, 403, "UNAUTHORIZED")
    # The role cannot go while a permission uses it; then it can.
    st, js, _ = v.request("DELETE", "/api/kvc/roles/%d" % role, token=admin)
    check_error(st, js, 400, "RESOURCE_IN_USE")
    st, js, _ = v.request("DELETE", "/api/kvc/permissions/%s/%s" % (tree["datacenter"], PU_USER),
                          token=admin)
    assert st == 204
    st, js, _ = v.request("DELETE", "/api/kvc/roles/%d" % role, token=admin)
    assert st == 204
    st, js, _ = v.request("DELETE", "/api/kvc/roles/-1", token=admin)
    check_error(st, js, 400, "NOT_ALLOWED_IN_CURRENT_STATE")


def test_users_manage_own_password(env):
    v, admin, tree = env
    st, js, _ = v.request("POST", "/api/kvc/users", {"name": "temp", "password": "short"},
                          token=admin)
    check_error(st, js, 400, "INVALID_ARGUMENT")
    st, js, _ = v.request("POST", "/api/kvc/users", {"name": "temp", "password": "Temp-pass-1"},
                          token=admin)
    assert st == 201
    t = v.login("temp", "Temp-pass-1")
    st, js, _ = v.request("PATCH", "/api/kvc/users/temp", {"password": "Temp-pass-2"}, token=t)
    assert st == 204
    st, js, _ = v.request("POST", "/api/session", basic=("temp", "Temp-pass-1"))
    check_error(st, js, 401, "UNAUTHENTICATED")
    v.login("temp", "Temp-pass-2")
    st, js, _ = v.request("DELETE", "/api/kvc/users/temp", token=admin)
    assert st == 204
    # Its sessions went with it.
    st, js, _ = v.request("GET", "/api/session", token=t)
    check_error(st, js, 401, "UNAUTHENTICATED")
    st, js, _ = v.request("DELETE", "/api/kvc/users/" + ADMIN, token=admin)
    check_error(st, js, 400, "NOT_ALLOWED_IN_CURRENT_STATE")
