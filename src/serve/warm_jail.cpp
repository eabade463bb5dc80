#include "serve/warm_jail.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "serve/request.hpp"
#include "util/json_in.hpp"

namespace stockade::serve {
namespace {

using nlohmann::json;

// The longest line the runner may send: the returned files at their cap, as
// base64, plus a cell's value and error (the runner cuts each to 256 KiB).
// Anything longer is a runner that was tampered with.
constexpr size_t kMaxLine = kReturnCap / 3 * 4 + (2u << 20);
// A reply is a few objects deep and holds at most one entry per returned file.
constexpr JsonBounds kReplyBounds{4, 4 * kMaxReturnFiles + 64};

const std::string* text(const json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
}

// Only the fields the server uses, with their types; whatever else a task
// that took over the runner wrote is not carried a step further.
json clean_reply(const json& m) {
    json out = {{"done", true}, {"files", json::object()}, {"value", nullptr}, {"error", nullptr}};
    if (auto f = m.find("files"); f != m.end() && f->is_object()) {
        for (const auto& [path, v] : f->items()) {
            if (!v.is_object()) continue;
            for (const char* k : {"text", "b64", "error"})
                if (const std::string* t = text(v, k)) {
                    out["files"][path] = {{k, *t}};
                    break;
                }
        }
    }
    if (const std::string* v = text(m, "value")) out["value"] = *v;
    if (auto e = m.find("error"); e != m.end() && e->is_object()) {
        json err = json::object();
        for (const char* k : {"type", "message", "traceback"}) err[k] = text(*e, k) ? *text(*e, k) : std::string();
        out["error"] = std::move(err);
    }
    return out;
}

}  // namespace

WarmJail::WarmJail(std::shared_ptr<const JailSpec> spec, EventLoop& loop, std::shared_ptr<WarmJail> templ)
    : templ_(std::move(templ)),
      spec_(std::move(spec)),
      loop_(loop),
      sup_(spec_->plan, loop,
           supervise::Supervisor::Options{
               .capture = true, .warm = true, .template_fd = templ_ ? templ_->supervisor().control_fd() : -1}),
      in_(kMaxLine) {}

WarmJail::~WarmJail() { sup_.kill(); }

void WarmJail::start() {
    sup_.start();
    ::fcntl(sup_.control_fd(), F_SETFL, O_NONBLOCK);
    control_open_ = true;
    control_w_ = IoWatch(loop_, sup_.control_fd(), POLLIN, [this](short revents) {
        if (!control_open_) return;
        if (revents & POLLOUT) write_control();
        if (revents & (POLLIN | POLLHUP | POLLERR)) read_control(false);
    });
    after_round_ = Hook(loop_, Hook::When::Post, [this] { check_ended(); });
    const uint64_t ms = forked() ? kForkReadyTimeoutMs : kReadyTimeoutMs;
    ready_wait_ = Timer(loop_, [this, ms] {
        if (state_ != State::Warming) return;
        warmup_error_ = "the jail did not get ready in " + std::to_string(ms / 1000) + " s";
        sup_.kill();
    });
    ready_wait_.arm_in_ms(ms);
}

void WarmJail::watch_control() {
    control_w_.set_events(control_open_ ? static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT)) : 0);
}

void WarmJail::dispatch(std::string line) {
    if (out_.empty())
        out_ = std::move(line);
    else
        out_ += line;
    if (state_ == State::Ready) state_ = State::Busy;
    write_control();
}

bool WarmJail::pop_reply(nlohmann::json& out) {
    if (replies_.empty()) return false;
    out = std::move(replies_.front());
    replies_.pop_front();
    return true;
}

supervise::Outcome WarmJail::collect() { return sup_.collect(sup_.done()); }

void WarmJail::close_control() {
    // Shut both ways: a task still writing gets EPIPE at once rather than
    // blocking on a socket nobody reads until its wall time runs out.
    if (control_open_ && sup_.control_fd() >= 0) ::shutdown(sup_.control_fd(), SHUT_RDWR);
    control_open_ = false;
    out_.clear();
    out_off_ = 0;
    in_.clear();
    watch_control();
}

void WarmJail::on_line(std::string_view line) {
    JsonIn in = parse_json(line, kReplyBounds);
    json& msg = in.value;
    if (!in.ok() || !msg.is_object()) {
        // Not the runner's: a task writing to the socket. Nothing more from it is believed.
        close_control();
        return;
    }
    if (state_ == State::Warming) {
        auto r = msg.find("ready");
        if (r != msg.end() && r->is_boolean() && r->get<bool>()) {
            state_ = State::Ready;
            ready_wait_.reset();
        } else {
            auto e = msg.find("error");
            warmup_error_ = e != msg.end() && e->is_string() ? e->get<std::string>() : "the runner did not start";
            sup_.kill();
        }
        return;
    }
    // One answer per task or cell: more than a few waiting is not the runner.
    auto d = msg.find("done");
    if (d == msg.end() || !d->is_boolean() || replies_.size() >= 2) {
        close_control();
        return;
    }
    if (!spec_->session)
        if (auto e = msg.find("exit");
            e != msg.end() && e->is_number_integer() && e->get<int64_t>() >= 0 && e->get<int64_t>() <= 255)
            exit_code_ = static_cast<int>(e->get<int64_t>());
    replies_.push_back(clean_reply(msg));
}

void WarmJail::read_control(bool all) {
    char buf[65536];
    // A share of the loop per round (1 MiB), unless the jail has ended and
    // what it wrote is all there is.
    for (int round = 0; all || round < 16; ++round) {
        ssize_t n = ::read(sup_.control_fd(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            close_control();
            return;
        }
        in_.append(buf, static_cast<size_t>(n));
        in_.lines([&](std::string_view line) {
            on_line(line);
            return control_open_;
        });
        if (control_open_ && in_.over()) close_control();
        if (!control_open_) return;
    }
}

void WarmJail::write_control() {
    while (control_open_ && out_off_ < out_.size()) {
        ssize_t n = ::send(sup_.control_fd(), out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n < 0) {
            close_control();
            return;
        }
        out_off_ += static_cast<size_t>(n);
    }
    if (out_off_ == out_.size()) {
        out_.clear();
        out_off_ = 0;
    }
    watch_control();
}

// After every round of the loop: the supervisor's events may have ended the jail.
void WarmJail::check_ended() {
    // Over when the init reports the program's end (everything in the jail
    // is gone by then), when the runner has said how its task ended and
    // nothing holds the output open (Supervisor::end_as_reported), or when
    // the jail is gone without a report.
    if (state_ == State::Busy && exit_code_ >= 0 && !sup_.exited()) sup_.end_as_reported(exit_code_);
    if ((sup_.done() || (sup_.exited() && state_ != State::Warming)) && state_ != State::Ended) {
        // Whatever the runner still had to say is in the socket now.
        if (control_open_) read_control(true);
        if (state_ == State::Warming && warmup_error_.empty())
            warmup_error_ = sup_.setup_error().empty() ? "the runner ended before it was ready" : sup_.setup_error();
        state_ = State::Ended;
    }
}

}  // namespace stockade::serve
