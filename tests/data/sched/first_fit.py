# first_fit.py NODES.csv PODS.csv [dep]: an independent replica of ocra's first-fit placement
# (lowest node, lowest devices), to check the counts sched_test.c expects. Prints placed, failed
# and the free GPU share after the last arrival.
import csv, sys
nodes = [dict(cpu=int(r['cpu_milli']), ram=int(r['memory_mib']), g=[1000]*int(r['gpu'])) for r in csv.DictReader(open(sys.argv[1]))]
pods = list(csv.DictReader(open(sys.argv[2])))
dep = len(sys.argv) > 3
if dep:
    pods = sorted(enumerate(pods), key=lambda x: (int(x[1]['creation_time']), x[0]))
else:
    pods = list(enumerate(pods))
import heapq
heap = []; placed = failed = 0
for i, p in pods:
    t = int(p['creation_time']) if dep else 0
    while dep and heap and heap[0][0] <= t:
        _, _, n, devs, m, cpu, ram = heapq.heappop(heap)
        for d in devs: n['g'][d] += m
        n['cpu'] += cpu; n['ram'] += ram
    cpu, ram, k, m = int(p['cpu_milli']), int(p['memory_mib']), int(p['num_gpu']), int(p['gpu_milli'])
    ok = False
    for n in nodes:
        if n['cpu'] < cpu or n['ram'] < ram: continue
        if k == 0: devs = []
        elif m == 1000:
            full = [d for d, f in enumerate(n['g']) if f == 1000]
            if len(full) < k: continue
            devs = full[:k]
        else:
            c = [d for d, f in enumerate(n['g']) if f >= m]
            if not c: continue
            devs = c[:1]
        for d in devs: n['g'][d] -= m
        n['cpu'] -= cpu; n['ram'] -= ram
        if dep: heapq.heappush(heap, (int(p['deletion_time']), i, n, devs, m, cpu, ram))
        ok = True; break
    placed += ok; failed += not ok
cap = sum(len(n['g']) for n in nodes) * 1000
print(placed, failed, 'free%%=%.2f' % (100 * sum(sum(n['g']) for n in nodes) / cap))
