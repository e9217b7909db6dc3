"""Error pages: Chinese for residents, plain words for staff, never a stack trace."""
from __future__ import annotations

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

MESSAGES = {
    400: ("请求有误", "提交的内容无法识别，请返回上一页重试。"),
    403: ("无权访问", "您没有访问这个页面的权限。"),
    404: ("页面不存在", "没有找到您要访问的页面，请核对链接是否完整。"),
    405: ("请求有误", "不支持这种访问方式，请返回上一页重试。"),
    413: ("内容过多", "提交的内容超过了允许的大小，请删减后重试。"),
    429: ("访问太频繁", "访问太频繁了，请稍等片刻再试。"),
    500: ("系统繁忙", "系统暂时出现问题，请稍后再试。"),
}


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        title, message = MESSAGES.get(exc.code or 500, (exc.name, exc.description or ""))
        return render_template("public/message.html", title=title, message=message), exc.code

    @app.errorhandler(CSRFError)
    def _csrf(_exc: CSRFError):
        return render_template(
            "public/message.html", title="页面已过期", message="页面已过期，请返回上一页，刷新后重新提交。"
        ), 400

    @app.errorhandler(OperationalError)
    def _database_down(_exc: OperationalError):
        app.logger.exception("database unavailable")
        return render_template(
            "public/message.html", title="系统繁忙", message="系统暂时繁忙，请稍后再试。"
        ), 503
