"""curl to two plaintext HTTP backends through two hosts on one port, one of
them a real nginx; a Python ssl client; the access log names host and backend."""
import subprocess

from tf_clients import client_context, http_get
from tf_peers import HttpBackend, start_nginx
from tf_pki import CA
from tf_proc import Tlsfront
from tf_run import check, free_port, run, tmpdir


def main():
    d = tmpdir()
    ca = CA(d)
    shop = ca.host_cert("shop", ["shop.test"])
    blog = ca.host_cert("blog", ["blog.test"])
    b_shop = HttpBackend("shop")
    nginx_port = free_port()
    have_nginx = start_nginx(d, nginx_port, "hello from nginx\n",
                             part="nginx as the blog's backend")[0] is not None
    if not have_nginx:
        b_blog = HttpBackend("blog")
        blog_port = b_blog.port
    else:
        blog_port = nginx_port
    tf = Tlsfront(d, {
        "shop": {"cert": shop[0], "key": shop[1], "backend": "127.0.0.1:%d" % b_shop.port},
        "blog": {"cert": blog[0], "key": blog[1], "backend": "127.0.0.1:%d" % blog_port},
    })
    base = "https://%s:%d/"
    for name, expect in (("shop.test", "backend shop /"),
                         ("blog.test", "hello from nginx" if have_nginx else "backend blog /")):
        r = subprocess.run(["curl", "-sS", "--cacert", ca.crt, "--resolve",
                            "%s:%d:127.0.0.1" % (name, tf.port), base % (name, tf.port)],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode == 0 and expect in r.stdout,
              "curl (verifying against the CA) through %s reaches its backend: %r %r"
              % (name, r.stdout, r.stderr))
    body = http_get(tf.port, "shop.test", "/py", client_context(verify_ca=ca.crt))
    check(body == b"backend shop /py\n", "Python ssl client reaches the shop backend")
    lines = tf.wait_access(3)
    check(any("host=shop" in l and "backend=127.0.0.1:%d" % b_shop.port in l and
              "sni=shop.test" in l and 'reason="closed"' in l for l in lines),
          "access log names host, SNI, backend and a clean close")
    check(all("tls=TLSv1.3" in l for l in lines), "TLS 1.3 is negotiated by default")
    check(tf.stop() == 0, "tlsfront exits 0 on SIGTERM")


run(main)
