import sys,re
sys.path.insert(0,'/work/corpus/tools')
import minilint as m
text=open(sys.argv[1]).read()
nodes,esc,skip=m.parse(text)
for n in nodes:
    c=n['cmd'].lower()
    r=n['rest']
    if c=='run':
        fl,_=m.parse_flags(r)
        fl=[f for f in fl if '$' in f]
        if not fl: continue
        r=' '.join(fl)+' ...'
    if c in ('from',): print()
    print('%4d %s %s'%(n['start'],n['cmd'],r[:150]))
