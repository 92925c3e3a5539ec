-- wrk's requests for load.sh: alternately one order (GET /orders/ID, a point query) and one customer's
-- total (GET /customers/ID/total, an aggregate), the ids drawn at random (seeded per wrk thread, so
-- every run asks the same sequence). Arguments after `--`: the number of orders and of customers.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

local orders, customers = 100000, 1000
local n = 0
function init(args)
  orders = tonumber(args[1] or orders)
  customers = tonumber(args[2] or customers)
  math.randomseed(1000 + seed)
end

function request()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format("GET", "/customers/" .. math.random(customers) .. "/total")
  end
  return wrk.format("GET", "/orders/" .. math.random(orders))
end
