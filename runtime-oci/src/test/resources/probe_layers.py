# Test init for RuncLayersTest: reports what a sandbox sees of its template's layers, changes them as
# root and as the user, waits for the test's go (so two sandboxes have both written), reports again.
import json, os, secrets, time

def stat(p):
    try:
        st = os.lstat(p)
        return {'uid': st.st_uid, 'gid': st.st_gid, 'mode': st.st_mode & 0o7777}
    except OSError as e:
        return {'errno': e.errno}

def read(p):
    try:
        return open(p).read()
    except OSError as e:
        return 'errno %d' % e.errno

def as_user(action):
    # A child that drops to the sandbox's user (uid 1000, no capabilities left) and tries action.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setresgid(1000, 1000, 1000)
            os.setresuid(1000, 1000, 1000)
            action()
            res = b'ok'
        except OSError as e:
            res = str(e.errno).encode()
        os.write(w, res)
        os._exit(0)
    os.close(w)
    res = os.read(r, 100).decode()
    os.waitpid(pid, 0)
    return res

def append(p, text):
    with open(p, 'a') as f:
        f.write(text)

def report(name, out):
    tmp = '/run/stockade/%s.tmp' % name
    with open(tmp, 'w') as f:
        json.dump(out, f)
    os.rename(tmp, '/run/stockade/%s' % name)

token = secrets.token_hex(8)
out = {
    'token': token,
    'rootfile': stat('/opt/app/rootfile'),
    'suid': stat('/opt/app/suid'),
    'userdir': stat('/srv/data'),
    'userfile': stat('/srv/data/f'),
    'hostname': read('/etc/hostname'),
    'shadowed': read('/opt/app/shadowed'),
    'gone': os.path.exists('/opt/app/gone'),
    'bottom_only': read('/opt/app/bottom-only'),
}
out['user_appends_rootfile'] = as_user(lambda: append('/opt/app/rootfile', 'user\n'))
out['user_writes_own_dir'] = as_user(lambda: append('/srv/data/new', 'user\n'))
out['user_appends_own_file'] = as_user(lambda: append('/srv/data/f', 'user ' + token + '\n'))
try:
    append('/opt/app/rootfile', token + '\n')
    out['root_appends_rootfile'] = 'ok'
except OSError as e:
    out['root_appends_rootfile'] = str(e.errno)
out['rootfile_after'] = stat('/opt/app/rootfile')
report('first.json', out)
while not os.path.exists('/run/stockade/go'):
    time.sleep(0.02)
report('second.json', {'rootfile': read('/opt/app/rootfile'), 'userfile': read('/srv/data/f')})
while True:
    time.sleep(60)
