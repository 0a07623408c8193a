//! The images critest asks for, under the names it expects, built offline
//! from the host's static busybox (no registry is reachable; critest pulls
//! only images CRI does not list).
//!
//! They follow cri-tools' own image recipes (`images/` in its source):
//! busybox with busybox's `/etc/passwd` and `/etc/group`, a user per
//! `test-image-user-*` image, and a web server standing in for nginx.

use std::path::{Path, PathBuf};

use urunc_pack::{LayerEntry, OciImage};

use crate::error::Result;
use crate::host_tools::static_busybox;
use crate::images::{archive_file_name, busybox_based_image};

/// critest's default container image (`framework.DefaultLinuxContainerImage`).
pub const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
/// critest's web server image (`webServerLinuxImage`), serving port 80.
pub const NGINX: &str = "registry.k8s.io/e2e-test-images/nginx:1.14-2";
/// The multi-container tests' web server (`httpdImage`), serving port 80.
pub const HTTPD: &str = "registry.k8s.io/e2e-test-images/httpd:2.4.39-4";
/// The host-network web server image (`hostNetWebServerImage`), serving port 12003.
pub const HOSTNET_NGINX: &str = "gcr.io/k8s-staging-cri-tools/hostnet-nginx-amd64:latest";
/// The port `hostnet-nginx` listens on (`webServerHostNetContainerPort`).
const HOSTNET_NGINX_PORT: u16 = 12003;

/// The `test-image-user-*` images and their `USER` (cri-tools' `images/build`).
const USER_IMAGES: &[(&str, &str)] = &[
    (
        "gcr.io/k8s-staging-cri-tools/test-image-user-uid:latest",
        "1002",
    ),
    (
        "gcr.io/k8s-staging-cri-tools/test-image-user-username:latest",
        "www-data",
    ),
    (
        "gcr.io/k8s-staging-cri-tools/test-image-user-uid-group:latest",
        "1003:1004",
    ),
    (
        "gcr.io/k8s-staging-cri-tools/test-image-user-username-group:latest",
        "www-data:1004",
    ),
];
/// `images/image-predefined-group`: user 1000 (`default-user`) in group 50000.
const PREDEFINED_GROUP_IMAGE: &str =
    "gcr.io/k8s-staging-cri-tools/test-image-predefined-group:latest";

/// busybox's own `/etc/passwd`.
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
";
/// busybox's own `/etc/group`.
const GROUP: &str = "root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
";

/// `pgrep PATTERN` (Debian's static busybox has none): the pids whose
/// process name contains PATTERN, read from /proc, itself left out.
const PGREP: &str = r#"#!/bin/sh
status=1
for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$pid" = "$$" ] && continue
    read -r name 2>/dev/null < "$dir/comm" || continue
    case "$name" in
        *"$1"*) echo "$pid"; status=0 ;;
    esac
done
exit $status
"#;
/// `ipcs -m` (Debian's static busybox has none): the System V shared
/// memory segments of the caller's IPC namespace, as the kernel lists them.
const IPCS: &str = "#!/bin/sh\ncat /proc/sysvipc/shm\n";

/// Writes every image critest's runtime groups use into `dir`; returns
/// (name, archive) pairs to import.
pub fn conformance_images(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut images = vec![
        OciImage {
            cmd: vec!["sh".into()],
            ..busybox_with_accounts(BUSYBOX, PASSWD, GROUP, busybox_1_29_extras()?)?
        },
        web_server(NGINX, 80, "")?,
        web_server(HOSTNET_NGINX, HOSTNET_NGINX_PORT, "")?,
        // The multi-container test looks for "httpd" in its log.
        web_server(HTTPD, 80, "httpd: serving port 80")?,
    ];
    for (name, user) in USER_IMAGES {
        images.push(OciImage {
            user: user.to_string(),
            ..busybox_with_accounts(name, PASSWD, GROUP, Vec::new())?
        });
    }
    images.push(OciImage {
        user: "1000".into(),
        ..busybox_with_accounts(
            PREDEFINED_GROUP_IMAGE,
            &format!("{PASSWD}default-user:x:1000:1000::/home/default-user:/bin/sh\n"),
            &format!("{GROUP}default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"),
            vec![LayerEntry::Dir {
                path: "/home/default-user".into(),
            }],
        )?
    });
    images
        .into_iter()
        .map(|image| {
            let out = dir.join(archive_file_name(&image.name));
            image.write_archive(&out)?;
            Ok((image.name, out))
        })
        .collect()
}

/// What critest's busybox image has and a busybox built from Debian's
/// static one lacks: the `pgrep` and `ipcs` applets, and `/bin/ls` as a
/// file of its own (busybox's applets are hard links; here they are
/// symlinks, and masking the `/bin/ls` symlink, as the MaskedPaths spec
/// does, would mask busybox itself).
fn busybox_1_29_extras() -> Result<Vec<LayerEntry>> {
    Ok(vec![
        text_file("/bin/pgrep", PGREP, 0o755),
        text_file("/bin/ipcs", IPCS, 0o755),
        LayerEntry::HostFile {
            path: "/bin/ls".into(),
            host: static_busybox()?,
        },
    ])
}

fn busybox_with_accounts(
    name: &str,
    passwd: &str,
    group: &str,
    mut extra: Vec<LayerEntry>,
) -> Result<OciImage> {
    extra.push(text_file("/etc/passwd", passwd, 0o644));
    extra.push(text_file("/etc/group", group, 0o644));
    busybox_based_image(name, extra)
}

/// A web server that passes for nginx where critest looks: it answers HTTP
/// on `port` with nginx's welcome page, its process is called `nginx`
/// (`pidof nginx`), it writes `/var/run/nginx.pid`, and its command line
/// holds "master process" (critest waits for that in `/proc/1/cmdline`;
/// nginx retitles its master so, a shell cannot, so the entrypoint passes
/// the title as an argument). The process is a shell script named nginx
/// that runs busybox httpd and stays its parent, so the name holds; it
/// prints `banner` first and stops on SIGTERM, as nginx does.
fn web_server(name: &str, port: u16, banner: &str) -> Result<OciImage> {
    let script = format!(
        "#!/bin/sh\n\
         echo $$ > /var/run/nginx.pid\n\
         [ -n '{banner}' ] && echo '{banner}'\n\
         httpd -f -p {port} -h /usr/share/nginx/html &\n\
         server=$!\n\
         trap 'kill $server; exit 0' TERM INT QUIT\n\
         wait $server\n"
    );
    let extra = vec![
        text_file("/usr/sbin/nginx", &script, 0o755),
        text_file(
            "/usr/share/nginx/html/index.html",
            "<html><head><title>Welcome to nginx!</title></head>\
             <body><h1>Welcome to nginx!</h1></body></html>\n",
            0o644,
        ),
        LayerEntry::Dir {
            path: "/var/run".into(),
        },
    ];
    let mut image = busybox_with_accounts(name, PASSWD, GROUP, extra)?;
    image.entrypoint = vec!["/usr/sbin/nginx".into(), "nginx: master process".into()];
    image.cmd = vec!["-g".into(), "daemon off;".into()];
    image.env.push("NGINX_VERSION=1.14.2".into());
    Ok(image)
}

fn text_file(path: &str, contents: &str, mode: u32) -> LayerEntry {
    LayerEntry::Bytes {
        path: path.into(),
        contents: contents.as_bytes().to_vec(),
        mode,
    }
}
