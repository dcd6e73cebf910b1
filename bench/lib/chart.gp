# chart.gp: requests/s and p50/p99 latency per scenario, from report.py's chart.dat.
#   gnuplot -e "datafile='chart.dat'; outfile='chart.png'; conns='16 64'" bench/lib/chart.gp
# chart.dat: per scenario one line: name, rps for each connection count in conns, then p50 and
# p99 (ms) for each; "-" where a scenario has no figure (failed, unsupported).
n = words(conns)
stats datafile using 0 nooutput
rows = STATS_records

set terminal pngcairo size 1400,620 font "sans,10"
set output outfile
set datafile missing "-"
set datafile commentschars "#"
set key outside top center horizontal maxcols 2 noenhanced
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set xtics rotate by 25 right noenhanced nomirror
set bmargin 7
set yrange [0:*]
set xrange [-0.6:rows - 0.4]
set multiplot layout 1,2 title "bpfmesh bench: keepalive request/response, GET 100 B" font ",12"

set title "requests/s (higher is better)"
set ylabel "requests/s"
plot for [i=1:n] datafile using 1+i:xtic(1) title sprintf("%s conns", word(conns, i))

set title "latency (lower is better)"
set ylabel "ms"
plot for [i=1:2*n] datafile using 1+n+i:xtic(1) \
	title sprintf("%s, %s conns", (i % 2 ? "p50" : "p99"), word(conns, (i + 1) / 2))

unset multiplot
