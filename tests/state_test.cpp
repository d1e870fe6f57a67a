#include <gtest/gtest.h>

#include "daemon/scheduler.h"
#include "daemon/state.h"

namespace portsentinel::daemon {
namespace {

using probes::ProbeResult;
using probes::Reason;

ProbeResult result(Reason r) {
  ProbeResult p;
  p.reason = r;
  return p;
}

TEST(State, FirstResultIsAChangeThenOnlyRealChanges) {
  TargetState s;
  auto t = advance(s, result(Reason::kOk));
  EXPECT_TRUE(t.changed);
  EXPECT_TRUE(t.first);
  EXPECT_FALSE(advance(s, result(Reason::kOk)).changed);
  t = advance(s, result(Reason::kPlaintextHttp));
  EXPECT_TRUE(t.changed);
  EXPECT_FALSE(t.first);
  EXPECT_EQ(t.from, Reason::kOk);
  EXPECT_EQ(t.to, Reason::kPlaintextHttp);
  EXPECT_FALSE(advance(s, result(Reason::kPlaintextHttp)).changed);
  t = advance(s, result(Reason::kNotTls));
  EXPECT_TRUE(t.changed);
  EXPECT_EQ(t.from, Reason::kPlaintextHttp);
  t = advance(s, result(Reason::kOk));
  EXPECT_TRUE(t.changed);
  EXPECT_EQ(s.last_reason, Reason::kOk);
}

TEST(SchedulePhase, StableAndSpreadOverTheInterval) {
  EXPECT_EQ(schedule_phase("shop-https"), schedule_phase("shop-https"));
  // 1,000 targets named alike land in all ten tenths of the interval, none crowded.
  std::array<int, 10> buckets{};
  for (int i = 0; i < 1000; ++i) {
    const double p = schedule_phase("target-" + std::to_string(i));
    ASSERT_GE(p, 0.0);
    ASSERT_LT(p, 1.0);
    ++buckets[static_cast<size_t>(p * 10)];
  }
  for (int b : buckets) {
    EXPECT_GT(b, 60);
    EXPECT_LT(b, 140);
  }
}

}  // namespace
}  // namespace portsentinel::daemon
