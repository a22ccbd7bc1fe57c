import sys, meshckpt
r = meshckpt.open(sys.argv[1])               # any checkpoint; no MPI needed
print([(v.key, v.dtype, v.shape) for v in r])
w = r.read("model/w")                        # numpy, verified against the checksums
print(w.dtype, w.shape, w[:2, :4])
