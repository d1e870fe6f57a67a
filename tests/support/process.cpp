#include "tests/support/process.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace portsentinel::testing {

std::string portsentinel_binary() { return PORTSENTINEL_BINARY; }

namespace {
std::vector<char*> c_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) {
    out.push_back(const_cast<char*>(a.c_str()));
  }
  out.push_back(nullptr);
  return out;
}
// In a forked child before exec: the test's own descriptors (its servers' listening sockets
// above all) must not leak into the program under test, where they would show up as that
// program's listeners.
void close_inherited_fds() {
  if (close_range(3, ~0U, 0) != 0) {
    for (int fd = 3; fd < 4096; ++fd) {
      close(fd);
    }
  }
}
}  // namespace

Process::Process(const std::vector<std::string>& argv, const std::string& log_file,
                 int run_as_uid, const std::vector<std::string>& env)
    : log_file_(log_file) {
  auto args = c_argv(argv);
  // Built before fork: the child only execs.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    env_strings.emplace_back(*e);
  }
  env_strings.insert(env_strings.end(), env.begin(), env.end());
  auto envp = c_argv(env_strings);
  pid_ = fork();
  if (pid_ == 0) {
    const int fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    close_inherited_fds();
    if (run_as_uid >= 0 &&
        (setgroups(0, nullptr) != 0 || setgid(static_cast<gid_t>(run_as_uid)) != 0 ||
         setuid(static_cast<uid_t>(run_as_uid)) != 0)) {
      _exit(126);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
}

Process::~Process() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string Process::log() const {
  std::ifstream in(log_file_);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Process::running() {
  if (reaped_) {
    return false;
  }
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
}

std::optional<int> Process::stop(int signo, std::chrono::milliseconds limit) {
  if (reaped_) {
    return std::nullopt;
  }
  kill(pid_, signo);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
      }
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling the child's exit
  }
  return std::nullopt;
}

int run_command(const std::vector<std::string>& argv, std::string* output,
                const std::string& stdin_text) {
  int out_pipe[2];
  int in_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(in_pipe) != 0) {
    return -1;
  }
  auto args = c_argv(argv);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(out_pipe[1], 2);
    close_inherited_fds();
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(in_pipe[0]);
  std::thread writer([&] {
    size_t off = 0;
    while (off < stdin_text.size()) {
      const ssize_t n = write(in_pipe[1], stdin_text.data() + off, stdin_text.size() - off);
      if (n <= 0) {
        break;
      }
      off += static_cast<size_t>(n);
    }
    close(in_pipe[1]);
  });
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(out_pipe[0], buf, sizeof buf)) > 0) {
    text.append(buf, static_cast<size_t>(n));
  }
  close(out_pipe[0]);
  writer.join();
  int status = 0;
  waitpid(pid, &status, 0);
  if (output != nullptr) {
    *output = text;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    if (condition()) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval
  }
}

std::optional<HttpReply> http_request(uint16_t port, const std::string& method,
                                      const std::string& path) {
  namespace asio = boost::asio;
  try {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
    const std::string req =
        method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";
    asio::write(socket, asio::buffer(req));
    std::string response;
    boost::system::error_code ec;
    asio::read(socket, asio::dynamic_buffer(response), ec);
    const auto space = response.find(' ');
    const auto body = response.find("\r\n\r\n");
    if (space == std::string::npos || body == std::string::npos) {
      return std::nullopt;
    }
    return HttpReply{std::stoi(response.substr(space + 1, 3)), response.substr(body + 4)};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<uint16_t> listen_port_from_log(const std::string& log) {
  static const std::regex kListen(R"(listen(?:=|":")http://[^ "]*:(\d+)/metrics)");
  std::smatch m;
  if (std::regex_search(log, m, kListen)) {
    return static_cast<uint16_t>(std::stoi(m[1]));
  }
  return std::nullopt;
}

bool have_program(const std::string& name) {
  std::string out;
  return run_command({"sh", "-c", "command -v " + name}, &out) == 0;
}

}  // namespace portsentinel::testing
