#!/usr/bin/env python3
"""Approximate re-implementation of BuildKit's Dockerfile lint rules (for
cross-checking hand verdicts only; every result is reviewed by hand).
Follows moby/buildkit 73ed6825 frontend/dockerfile/{parser,instructions,
dockerfile2llb/validations.go,convert.go}.
Usage: minilint.py FILE [BASEENV_JSON]
Outputs: RuleName<TAB>line<TAB>detail
"""
import json, re, sys

DEFAULT_ARGS = ["BUILDPLATFORM", "BUILDOS", "BUILDOSVERSION", "BUILDARCH", "BUILDVARIANT",
                "TARGETPLATFORM", "TARGETOS", "TARGETOSVERSION", "TARGETARCH", "TARGETVARIANT", "TARGETSTAGE"]
DEFAULT_VALS = {"BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux", "BUILDOSVERSION": "", "BUILDARCH": "amd64",
                "BUILDVARIANT": "", "TARGETPLATFORM": "linux/amd64", "TARGETOS": "linux", "TARGETOSVERSION": "",
                "TARGETARCH": "amd64", "TARGETVARIANT": "", "TARGETSTAGE": ""}
NONENV = {"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"}
SECRET = re.compile(r'(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)')
ALLOW = re.compile(r'(?i)(?:_|^)(?:public|file|version)(?:_|$)')
DIRECTIVE = re.compile(r'^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$')
HEREDOC = re.compile(r'^(\d*)<<(-?)\s*([^<]*)$')

out = []


def warn(rule, line, detail=""):
    out.append((rule, line, detail))


# ---------------- shell-ish word processing ----------------
def scan_vars(word, esc='\\', skip_quotes=False):
    """Return (expanded?, list of var names referenced) like shell.Lex.ProcessWord."""
    names = []
    i = 0
    n = len(word)
    inq = None

    def read_dollar(i):
        # word[i] == '$'
        i += 1
        if i < n and word[i] == '{':
            i += 1
            m = re.match(r'[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?\-$!0]', word[i:])
            if not m:
                return i, None
            name = m.group(0)
            names.append(name)
            i += len(name)
            # process the rest until matching }
            depth = 1
            while i < n:
                c = word[i]
                if c == esc and i + 1 < n:
                    i += 2
                    continue
                if c == '$':
                    i = read_dollar(i)[0]
                    continue
                if c == '}':
                    return i + 1, name
                i += 1
            return i, name
        m = re.match(r'[0-9]+|[@*#?\-$!0]|[A-Za-z_][A-Za-z0-9_]*', word[i:])
        if not m:
            return i, None
        name = m.group(0)
        names.append(name)
        return i + len(name), name

    while i < n:
        c = word[i]
        if not skip_quotes:
            if inq == "'":
                if c == "'":
                    inq = None
                i += 1
                continue
            if c == "'" and inq is None:
                inq = "'"
                i += 1
                continue
            if c == '"':
                inq = None if inq == '"' else '"'
                i += 1
                continue
        if c == esc and i + 1 < n:
            i += 2
            continue
        if c == '$':
            i = read_dollar(i)[0]
            continue
        i += 1
    # special params/digits are looked up too (getEnv is called), keep them
    return names


def expand_simple(word, env, esc='\\'):
    """best-effort expansion for FROM/ARG defaults (only $X, ${X}, ${X:-d}, ${X-d}, ${X:+a})."""
    def rep(m):
        name = m.group(1) or m.group(2)
        op = m.group(3)
        arg = m.group(4) or ""
        v = env.get(name)
        if op in (":-",):
            return v if v else arg
        if op == "-":
            return v if v is not None else arg
        if op == ":+":
            return arg if v else ""
        if op == "+":
            return arg if v is not None else ""
        return v or ""
    return re.sub(r'\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|-|:\+|\+)([^}]*))?\})', rep, word)


def split_words(s):
    """split like parseWords: whitespace separated, honoring quotes (quotes kept)."""
    words = []
    cur = ''
    inq = None
    i = 0
    while i < len(s):
        c = s[i]
        if inq:
            cur += c
            if c == inq:
                inq = None
            elif c == '\\' and inq == '"' and i + 1 < len(s):
                cur += s[i + 1]
                i += 1
        elif c in ' \t':
            if cur:
                words.append(cur)
                cur = ''
        elif c in '"\'':
            inq = c
            cur += c
        elif c == '\\' and i + 1 < len(s):
            cur += c + s[i + 1]
            i += 1
        else:
            cur += c
        i += 1
    if cur:
        words.append(cur)
    return words


# ---------------- reference validation ----------------
ALNUM = r'[a-z0-9]+'
SEP = r'(?:[._]|__|[-]+)'
COMP = ALNUM + '(?:' + SEP + ALNUM + ')*'
DOMCOMP = r'(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
DOMAIN = r'(?:' + DOMCOMP + r'(?:\.' + DOMCOMP + r')*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?'
TAG = r'[\w][\w.-]{0,127}'
DIGEST = r'[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}'
REF = re.compile('^(?:' + DOMAIN + '/)?' + COMP + '(?:/' + COMP + ')*' + '(?::' + TAG + ')?(?:@' + DIGEST + ')?$')


def valid_ref(s):
    if not REF.match(s):
        return False
    return True


# ---------------- parser ----------------
def parse(text):
    lines = text.split('\n')
    if lines and lines[-1] == '':
        lines = lines[:-1]
    esc = '\\'
    skip = set()
    # directives
    idx = 0
    while idx < len(lines):
        l = lines[idx]
        if idx == 0 and l.startswith('\ufeff'):
            l = l[1:]
        m = DIRECTIVE.match(l.strip()) if l.strip().startswith('#') else None
        if not m:
            break
        k = m.group(1).lower()
        if k == 'escape':
            esc = m.group(2)
        elif k == 'check':
            for part in m.group(2).split(';'):
                kk, _, vv = part.partition('=')
                if kk.strip() == 'skip':
                    skip |= set(x.strip() for x in vv.split(','))
        elif k != 'syntax':
            break
        idx += 1
    cont = re.compile(r'([^' + re.escape(esc) + r'])' + re.escape(esc) + r'[ \t]*$|^' + re.escape(esc) + r'[ \t]*$')
    nodes = []
    i = 0
    comments = []
    while i < len(lines):
        raw = lines[i].rstrip('\r')
        i += 1
        start = i
        s = raw.lstrip()
        if s.startswith('#'):
            c = s[1:].strip()
            comments = [] if c == '' else comments + [c]
            continue
        if cont.search(s):
            buf = cont.sub(lambda m: m.group(1) or '', s)
            eol = False
        else:
            buf = s
            eol = True
        if eol and buf == '':
            continue
        empty_cont = False
        while not eol and i < len(lines):
            r2 = lines[i].rstrip('\r')
            i += 1
            if r2.lstrip().startswith('#'):
                continue
            if r2.strip() == '':
                empty_cont = True
                continue
            if cont.search(r2):
                buf += cont.sub(lambda m: m.group(1) or '', r2)
            else:
                buf += r2
                eol = True
        end = i
        if empty_cont:
            warn('NoEmptyContinuation', end, '')
        m = re.match(r'^(\S+)\s*(.*)$', buf)
        cmd, rest = m.group(1), m.group(2)
        heredocs = []
        if cmd.lower() in ('run', 'copy', 'add') and '<<' in buf:
            for w in split_words(rest):
                hm = HEREDOC.match(w)
                if hm and hm.group(3):
                    name = hm.group(3)
                    quoted = bool(re.search(r'[\'"]', name))
                    name = name.replace('"', '').replace("'", '')
                    chomp = hm.group(2) == '-'
                    content = []
                    while i < len(lines):
                        r3 = lines[i].rstrip('\r')
                        i += 1
                        t = r3.lstrip('\t') if chomp else r3
                        if t == name:
                            break
                        content.append(r3)
                    heredocs.append((name, not quoted, '\n'.join(content)))
        nodes.append(dict(cmd=cmd, rest=rest, start=start, end=end, heredocs=heredocs, comments=comments))
        comments = []
    return nodes, esc, skip


def parse_flags(rest):
    flags = []
    words = split_words(rest)
    while words and words[0].startswith('--'):
        flags.append(words.pop(0))
    return flags, words


def is_json_array(s):
    s = s.strip()
    if not s.startswith('['):
        return None
    try:
        v = json.loads(s)
    except Exception:
        return None
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    return None


def lint(text, baseenv):
    nodes, esc, skip = parse(text)
    meta = []
    stages = []
    for nd in nodes:
        c = nd['cmd'].lower()
        if c == 'from':
            stages.append(dict(node=nd, cmds=[]))
        elif not stages:
            if c == 'arg':
                meta.append(nd)
            else:
                warn('error', nd['start'], 'instruction before FROM')
        else:
            stages[-1]['cmds'].append(nd)
    # parse-time: MAINTAINER, FROM casing (in file order)
    for nd in nodes:
        c = nd['cmd'].lower()
        if c == 'maintainer':
            warn('MaintainerDeprecated', nd['start'])
        if c == 'from':
            flags, args = parse_flags(nd['rest'])
            if len(args) == 3:
                if args[2] != args[2].lower():
                    warn('StageNameCasing', nd['start'], args[2])
                fc = nd['cmd']
                if fc == fc.lower() and args[1] != args[1].lower():
                    warn('FromAsCasing', nd['start'])
                if fc == fc.upper() and args[1] != args[1].upper():
                    warn('FromAsCasing', nd['start'])
    # stage names
    names = set()
    for st in stages:
        flags, args = parse_flags(st['node']['rest'])
        st['flags'] = flags
        st['base'] = args[0] if args else ''
        st['name'] = args[2].lower() if len(args) == 3 else ''
        if st['name']:
            if st['name'] in ('context', 'scratch'):
                warn('ReservedStageName', st['node']['start'], st['name'])
            if st['name'] in names:
                warn('DuplicateStageName', st['node']['start'], st['name'])
            names.add(st['name'])
    # casing
    lo = up = 0
    allc = []
    for st in stages:
        allc.append(st['node'])
        allc += st['cmds']
    for nd in allc:
        w = nd['cmd']
        if w == w.lower():
            lo += 1
        elif w == w.upper():
            up += 1
    maj_lower = lo > up
    for nd in allc:
        w = nd['cmd']
        if maj_lower and w.lower() != w:
            warn('ConsistentInstructionCasing', nd['start'], w)
        elif not maj_lower and w.upper() != w:
            warn('ConsistentInstructionCasing', nd['start'], w)
    # meta args
    gargs = dict(DEFAULT_VALS)
    declared = set(DEFAULT_ARGS)
    for nd in meta:
        for w in split_words(nd['rest']):
            k, eq, v = w.partition('=')
            declared.add(k)
            if eq:
                v = v.strip('"').strip("'")
                gargs[k] = expand_simple(v, gargs)
    # InvalidDefaultArgInFrom
    for st in stages:
        res = expand_simple(st['base'], gargs).replace('"', '').replace("'", '')
        if not valid_ref(res):
            warn('InvalidDefaultArgInFrom', st['node']['start'], st['base'] + ' -> ' + res)
    # dispatch
    done = {}
    for si, st in enumerate(stages):
        nd = st['node']
        for v in scan_vars(st['base'], esc):
            if v not in declared:
                warn('UndefinedArgInFrom', nd['start'], v)
        for f in st['flags']:
            if f.startswith('--platform='):
                p = f[len('--platform='):]
                vs = scan_vars(p, esc)
                for v in vs:
                    if v not in declared:
                        warn('UndefinedArgInFrom', nd['start'], v)
                if len(vs) == 1 and vs[0] == 'TARGETPLATFORM':
                    warn('RedundantTargetPlatform', nd['start'], p)
                if not vs:
                    os_, _, arch = p.partition('/')
                    arch = arch.split('/')[0]
                    if not (os_ in st['name'] or (arch and arch in st['name'])):
                        warn('FromPlatformFlagConstDisallowed', nd['start'], p)
        base = expand_simple(st['base'], gargs).replace('"', '').replace("'", '')
        parent = done.get(base)  # addState looks up by exact BaseName
        if parent:
            env = dict(parent['env'])
            bargs = set(parent['bargs'])
            shell = parent['shell']
            wdset = parent['wdset']
            src = 'stage:' + base
        else:
            env = {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}
            key = base.split('@')[0]
            be = baseenv.get(key) or baseenv.get(key.split(':')[0]) or {}
            env.update(be)
            bargs = set()
            shell = False
            wdset = False
        trackers = {}

        def chk(words, line, what):
            for w in words:
                for v in scan_vars(w, esc):
                    if v in env or v in bargs or v in NONENV:
                        continue
                    if not re.match(r'^[A-Za-z_]', v):
                        continue
                    warn('UndefinedVar', line, '%s (%s)' % (v, what))

        for c in st['cmds']:
            name = c['cmd'].lower()
            line = c['start']
            flags, words = parse_flags(c['rest'])
            if name == 'env' or name == 'label':
                ws = split_words(c['rest'])
                kvs = []
                if ws and '=' not in ws[0]:
                    parts = re.split(r'[\t\v\f\r ]+', c['rest'].strip(), maxsplit=1)
                    warn('LegacyKeyValueFormat', line, name.upper())
                    kvs = [(parts[0], parts[1] if len(parts) > 1 else '')]
                else:
                    for w in ws:
                        k, _, v = w.partition('=')
                        kvs.append((k, v))
                for k, v in kvs:
                    chk([k, v], line, name)
                if name == 'env':
                    for k, v in kvs:
                        if SECRET.search(k) and not ALLOW.search(k):
                            warn('SecretsUsedInArgOrEnv', line, 'ENV ' + k)
                    for k, v in kvs:
                        env[k] = v
            elif name == 'arg':
                for w in split_words(c['rest']):
                    k, eq, v = w.partition('=')
                    if SECRET.search(k) and not ALLOW.search(k):
                        warn('SecretsUsedInArgOrEnv', line, 'ARG ' + k)
                    if eq:
                        chk([v], line, 'arg default')
                        env[k] = v
                    elif k in gargs:
                        env[k] = gargs[k]
                    else:
                        bargs.add(k)
            elif name in ('copy', 'add'):
                fl = [f for f in flags if re.match(r'--(chown|chmod|checksum)=', f)]
                chk([f.split('=', 1)[1] for f in fl], line, name + ' flag')
                j = is_json_array(' '.join(words)) if words else None
                chk(j if j is not None else words, line, name)
                for hname, expand, content in c['heredocs']:
                    if expand:
                        chk([content], line, name + ' heredoc')
            elif name == 'workdir':
                p = c['rest'].strip()
                chk([p], line, 'workdir')
                if not wdset and not expand_simple(p, env).replace('"', '').replace("'", '').startswith('/'):
                    warn('WorkdirRelativePath', line, p)
                wdset = True
            elif name in ('user', 'stopsignal'):
                chk([c['rest'].strip()], line, name)
            elif name == 'volume':
                j = is_json_array(c['rest'])
                chk(j if j is not None else split_words(c['rest']), line, 'volume')
            elif name == 'run':
                for f in flags:
                    if f.startswith('--mount='):
                        chk([f[len('--mount='):]], line, 'mount')
            elif name == 'shell':
                shell = True
            elif name in ('cmd', 'entrypoint', 'healthcheck'):
                if name in trackers:
                    warn('MultipleInstructionsDisallowed', trackers[name], name.upper())
                trackers[name] = line
                if name != 'healthcheck' and is_json_array(c['rest']) is None and not shell:
                    warn('JSONArgsRecommended', line, name.upper())
            elif name == 'expose':
                for w in split_words(c['rest']):
                    w2 = expand_simple(w, env)
                    if not w2:
                        continue
                    parts = w2.split(':')
                    ip = hostp = ''
                    if len(parts) == 2:
                        hostp = parts[0]
                    elif len(parts) > 2:
                        ip = ':'.join(parts[:-2]); hostp = parts[-2]
                    portp, _, proto = parts[-1].partition('/')
                    if proto != proto.lower():
                        warn('ExposeProtoCasing', line, w2)
                    if ip or hostp:
                        warn('ExposeInvalidFormat', line, w2)
        st_rec = dict(env=env, bargs=bargs, shell=shell, wdset=wdset)
        if st['name']:
            done[st['name']] = st_rec
    res = [o for o in out if o[0] not in skip]
    return sorted(res, key=lambda x: x[1])


if __name__ == '__main__':
    text = open(sys.argv[1], encoding='utf-8').read()
    baseenv = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else {}
    for r, l, d in lint(text, baseenv):
        print('%s\t%d\t%s' % (r, l, d))
