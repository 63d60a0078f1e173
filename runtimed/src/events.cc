#include "runtimed/events.h"

#include "runtimed/text.h"

#include <boost/json.hpp>

namespace sandboxd::runtimed {

std::string event_line(std::uint64_t id, std::string_view type, Clock::WallTime ts,
                       const boost::json::object& data) {
  std::string line = "{\"id\":" + std::to_string(id) + ",\"type\":\"";
  line += type;  // a fixed name of §6.4
  line += "\",\"ts\":\"";
  line += format_time_ms(ts);
  line += "\",\"data\":";
  line += boost::json::serialize(data);
  line += "}\n";
  return line;
}

}  // namespace sandboxd::runtimed
