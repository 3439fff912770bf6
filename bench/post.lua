-- wrk script: POST the JSON body in $BENCH_BODY to the URL.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BENCH_BODY")
